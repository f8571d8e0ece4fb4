import fs from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { spawnCli } from '../support/cli.js';
import { freePort, tempDir } from '../support/server.js';

/**
 * `sensorcloud demo` on a fresh data directory, for a few seconds: the demo organization is
 * created, simulated sensors stream readings over MQTT, the fridge's first excursion raises an
 * alarm, and the webhook to the local sink delivers it.
 */

const API_KEY = 'sk_live_demo00000000000000000000000000';

describe('sensorcloud demo', () => {
  it('streams readings over MQTT and raises an alarm that reaches its webhook sink', async () => {
    const dataDir = await tempDir('sensorcloud-demo-');
    const cli = spawnCli(['demo', '--interval', '300'], {
      DATA_DIR: dataDir,
      DATABASE_URL: undefined,
      SENSORCLOUD_PROVISION: undefined,
      PORT: '0',
      HOST: '127.0.0.1',
      MQTT_PORT: String(await freePort()),
      LOG_LEVEL: 'warn',
    });
    try {
      const [, url] = await cli.waitFor(/sensorcloud demo — (http:\/\/127\.0\.0\.1:\d+)/, 120_000);
      await cli.waitFor(/alarm\.triggered: .* \(webhook received\)/, 60_000);
      const auth = { headers: { authorization: `Bearer ${API_KEY}` } };
      const alarms = (await (await fetch(`${url}/v1/alarms`, auth)).json()) as { data: unknown[] };
      expect(alarms.data.length).toBeGreaterThan(0);
      const sensors = (await (await fetch(`${url}/v1/sensors?limit=100`, auth)).json()) as { data: { id: string }[] };
      const latest = await fetch(`${url}/v1/sensors/${sensors.data[0]!.id}/readings/latest`, auth);
      expect(latest.status).toBe(200);
      expect(cli.output().stdout).toMatch(/tick \d+: \d+ readings sent/);
    } finally {
      cli.child.kill('SIGINT');
      await cli.exited;
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  }, 240_000);
});
