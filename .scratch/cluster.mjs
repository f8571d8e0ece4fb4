import cluster from 'node:cluster';
if (cluster.isPrimary) {
  const n = Number(process.env.EXP_WORKERS ?? 2);
  for (let i = 0; i < n; i++) cluster.fork();
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers)) w.kill('SIGTERM'); setTimeout(() => process.exit(0), 3000); });
} else {
  const { main } = await import('/work/main/dist/cli/main.js');
  process.exitCode = await main(['serve']);
}
