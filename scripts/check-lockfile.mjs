// Every package in package-lock.json must carry its download address and an sha512 integrity hash:
// lockfile-lint checks the addresses it finds (registry, https, package names) but passes over
// entries that have none.
import { readFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'));
const incomplete = Object.entries(lock.packages)
  .filter(([path, entry]) => path !== '' && !entry.link && !(entry.resolved && entry.integrity?.startsWith('sha512-')))
  .map(([path]) => path);
if (incomplete.length > 0) {
  const shown = incomplete.slice(0, 10).join('\n  ') + (incomplete.length > 10 ? '\n  …' : '');
  console.error(
    `package-lock.json: ${incomplete.length} entries without resolved or sha512 integrity (regenerate it with npm):\n  ${shown}`,
  );
  process.exit(1);
}
console.log(`package-lock.json: all ${Object.keys(lock.packages).length - 1} entries have resolved and sha512 integrity`);
