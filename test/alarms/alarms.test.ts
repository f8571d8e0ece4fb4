import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKey } from '../api/support.js';
import { type SeededOrg, seedOrganization } from '../readings/fixtures.js';
import { type TestServer, serverBackends, startTestServer } from '../support/server.js';
import { type Receiver, startReceiver } from '../webhooks/receiver.js';

/**
 * Alarms end to end (issue 13): thresholds over the API, evaluated at ingest in the batch's
 * transaction; the delay; automatic resolution; acknowledge, resolve and comments with who and
 * when; the periodic check (excursions whose delay ran out, silent sensors); each change an event
 * a webhook receives.
 */

const ENV = { ALARM_CHECK_INTERVAL: '1', WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_SCHEDULE: '100ms' };

describe.each(serverBackends)('alarms ($name)', (backend) => {
  let server: TestServer;
  let receiver: Receiver;
  let org: SeededOrg;
  let key: string;

  beforeAll(async () => {
    server = await startTestServer({ backend: backend.name, env: ENV });
    receiver = await startReceiver();
    org = await seedOrganization(server.db, `al-${backend.name}-${Math.random().toString(36).slice(2, 8)}`);
    key = await apiKey(server.db, { id: org.organizationId, ownerId: org.userId }, [
      'alarms:read',
      'alarms:write',
      'webhooks:write',
      'readings:write',
    ]);
    const hook = await api('POST', '/v1/webhooks', {
      url: receiver.url,
      event_types: ['alarm.triggered', 'alarm.acknowledged', 'alarm.resolved', 'sensor.offline'],
    });
    receiver.secrets = [hook.data.data.secret];
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  async function api(method: string, path: string, body?: unknown) {
    const response = await server.fetch(path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, data: text ? JSON.parse(text) : undefined };
  }
  /** Readings of sensor `key` of the seeded device, `[seconds ago, value]`. */
  async function ingest(sensor: string, readings: [number, number][]) {
    const now = Date.now();
    const response = await server.fetch('/v1/ingest', {
      method: 'POST',
      headers: { authorization: `Bearer ${org.deviceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(readings.map(([ago, value]) => ({ sensor, ts: new Date(now - ago * 1000).toISOString(), value }))),
    });
    expect(response.status, await response.text()).toBe(200);
  }
  const alarmsOf = async (query: string) => (await api('GET', `/v1/alarms?${query}`)).data.data as any[];

  it('a threshold with a delay triggers only after the delay, and resolves itself when readings return in range', async () => {
    const sensorId = org.sensors.temp!;
    const created = await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, max: 8, delay_seconds: 60, severity: 'critical' });
    expect(created.status).toBe(201);
    const thresholdId = created.data.data.id;

    // The excursion begins 30 s ago: the periodic check (every second here) cannot raise it
    // before its 60 s are up either, so "no alarm yet" holds whatever the check does meanwhile.
    await ingest('temp', [
      [300, 5],
      [30, 9],
      [20, 9.5],
    ]);
    expect(await alarmsOf(`threshold_id=${thresholdId}`)).toEqual([]);
    await ingest('temp', [[-40, 10]]); // 70 s after the excursion began (a device clock slightly ahead)
    const [alarm] = await alarmsOf(`threshold_id=${thresholdId}`);
    expect(alarm).toMatchObject({
      sensor_id: sensorId,
      threshold_id: thresholdId,
      kind: 'range',
      status: 'active',
      severity: 'critical',
      condition: 'above_max',
      value: 10,
      limit: 8,
    });
    // Still out of range: no second alarm.
    await ingest('temp', [[-45, 11]]);
    expect(await alarmsOf(`threshold_id=${thresholdId}`)).toHaveLength(1);

    await ingest('temp', [[-50, 7]]);
    const [resolved] = await alarmsOf(`threshold_id=${thresholdId}`);
    expect(resolved).toMatchObject({ id: alarm.id, status: 'resolved', resolution: 'auto', resolved_by: null });

    const types = () => receiver.received.filter((d) => d.body.data.id === alarm.id).map((d) => d.body.type);
    await expect.poll(types, { timeout: 10_000 }).toEqual(['alarm.triggered', 'alarm.resolved']);
    for (const delivery of receiver.received) expect(delivery.verifiedWith).toHaveLength(1);
    expect(receiver.received.find((d) => d.body.data.id === alarm.id)!.body.data).toMatchObject({ sensor_id: sensorId, status: 'active' });
  });

  it('acknowledge, comment and resolve: who did what and when, in the history; 409 past the end', async () => {
    const sensorId = org.sensors.humidity!;
    await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, min: 20, max: 60 });
    await ingest('humidity', [[50, 10]]);
    const [alarm] = await alarmsOf(`sensor_id=${sensorId}&status=active`);
    expect(alarm).toMatchObject({ condition: 'below_min', severity: 'warning' });

    const acked = await api('POST', `/v1/alarms/${alarm.id}/acknowledge`, { note: 'on my way' });
    expect(acked.status).toBe(200);
    expect(acked.data.data).toMatchObject({ status: 'acknowledged', acknowledged_by: org.userId });
    expect((await api('POST', `/v1/alarms/${alarm.id}/acknowledge`)).status).toBe(409);
    const comment = await api('POST', `/v1/alarms/${alarm.id}/comments`, { body: 'door was open' });
    expect(comment.status).toBe(201);
    expect(comment.data.data).toMatchObject({ body: 'door was open', author_user_id: org.userId });
    const resolved = await api('POST', `/v1/alarms/${alarm.id}/resolve`, { note: 'closed the door' });
    expect(resolved.data.data).toMatchObject({ status: 'resolved', resolution: 'user', resolved_by: org.userId });
    const again = await api('POST', `/v1/alarms/${alarm.id}/resolve`);
    expect(again.status).toBe(409);
    expect(again.data.detail).toMatch(/resolved/);

    const history = (await api('GET', `/v1/alarms/${alarm.id}/history`)).data.data;
    expect(history.map((h: any) => [h.action, h.actor_kind, h.actor_user_id, h.note])).toEqual([
      ['triggered', 'system', null, null],
      ['acknowledged', 'user', org.userId, 'on my way'],
      ['commented', 'user', org.userId, 'door was open'],
      ['resolved', 'user', org.userId, 'closed the door'],
    ]);
    for (const h of history) expect(Date.parse(h.at)).toBeGreaterThan(Date.now() - 60_000);
    // JSON:API clients send and get JSON:API.
    const jsonApi = await server.fetch(`/v1/alarms/${alarm.id}/comments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/vnd.api+json', accept: 'application/vnd.api+json' },
      body: JSON.stringify({ data: { type: 'alarm-comments', attributes: { body: 'second look' } } }),
    });
    expect(jsonApi.status).toBe(201);
    expect(((await jsonApi.json()) as any).data).toMatchObject({ type: 'alarm-comments', attributes: { body: 'second look' } });
    expect((await api('GET', `/v1/alarms/${alarm.id}/comments`)).data.data.map((c: any) => c.body)).toEqual([
      'door was open',
      'second look',
    ]);

    // Filters.
    expect((await alarmsOf(`status=resolved&sensor_id=${sensorId}`)).map((a) => a.id)).toEqual([alarm.id]);
    expect(await alarmsOf(`open=true&sensor_id=${sensorId}`)).toEqual([]);
    expect(await alarmsOf(`severity=critical&sensor_id=${sensorId}`)).toEqual([]);
    expect((await api('GET', '/v1/alarms?status=exploded')).status).toBe(400);
    expect((await api('POST', '/v1/alarms/00000000-0000-4000-8000-000000000000/acknowledge')).status).toBe(404);
  });

  it('an excursion whose delay runs out with no new reading triggers at the next check', async () => {
    const sensorId = org.sensors.pressure!;
    const { data } = await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, max: 1000, delay_seconds: 2 });
    await ingest('pressure', [[0, 1200]]);
    expect(await alarmsOf(`threshold_id=${data.data.id}`)).toEqual([]);
    await expect.poll(async () => (await alarmsOf(`threshold_id=${data.data.id}`)).length, { timeout: 10_000 }).toBe(1);
  });

  it('a silent sensor raises sensor.offline, and its next reading clears it', async () => {
    const sensorId = org.sensors.other!;
    const { data } = await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, offline_after_seconds: 600 });
    // Last heard an hour ago (and watched since then).
    await sql`update alarm_thresholds set created_at = now() - interval '1 hour' where id = ${data.data.id}`.execute(server.db);
    const [alarm] = await (async () => {
      await expect.poll(async () => (await alarmsOf(`threshold_id=${data.data.id}`)).length, { timeout: 10_000 }).toBe(1);
      return alarmsOf(`threshold_id=${data.data.id}`);
    })();
    expect(alarm).toMatchObject({ kind: 'offline', condition: 'offline', status: 'active', limit: 600 });
    // Raised once, however many checks run.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await alarmsOf(`threshold_id=${data.data.id}`)).toHaveLength(1);

    const response = await server.fetch('/v1/ingest', {
      method: 'POST',
      headers: { authorization: `Bearer ${org.otherDeviceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ sensor: 'other', ts: new Date().toISOString(), value: 1 }]),
    });
    expect(response.status).toBe(200);
    expect((await alarmsOf(`threshold_id=${data.data.id}`))[0]).toMatchObject({ status: 'resolved', resolution: 'auto' });
    await expect
      .poll(() => receiver.received.filter((d) => d.body.data.id === alarm.id).map((d) => d.body.type), { timeout: 10_000 })
      .toEqual(['sensor.offline', 'alarm.resolved']);
  });

  it('an offline alarm resolved by a person while the sensor stays silent is not raised again at the next check', async () => {
    const sensorId = org.sensors.pressure!;
    const { data } = await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, offline_after_seconds: 600 });
    await sql`update alarm_thresholds set created_at = now() - interval '1 hour' where id = ${data.data.id}`.execute(server.db);
    await sql`update sensor_latest set seen_at = now() - interval '1 hour' where sensor_id = ${sensorId}`.execute(server.db);
    await expect.poll(async () => (await alarmsOf(`threshold_id=${data.data.id}`)).length, { timeout: 10_000 }).toBe(1);
    const [alarm] = await alarmsOf(`threshold_id=${data.data.id}`);
    expect((await api('POST', `/v1/alarms/${alarm.id}/resolve`, { note: 'unplugged on purpose' })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect((await alarmsOf(`threshold_id=${data.data.id}`)).map((a) => a.status)).toEqual(['resolved']);
    await api('DELETE', `/v1/alarm-thresholds/${data.data.id}`);
  });

  it('calibration.due when a calibration comes due, once per due date', async () => {
    await api('POST', '/v1/webhooks', { url: receiver.url, event_types: ['calibration.due'] }).then((r) =>
      receiver.secrets.push(r.data.data.secret),
    );
    const calibration = await server.fetch('/v1/calibrations', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await apiKey(server.db, { id: org.organizationId, ownerId: org.userId }, ['calibrations:write'])}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        sensor_id: org.sensors.pressure,
        calibrated_at: '2025-01-01T00:00:00Z',
        due_at: new Date(Date.now() + 1500).toISOString(),
      }),
    });
    expect(calibration.status).toBe(201);
    const { data } = (await calibration.json()) as { data: { id: string } };
    const dueEvents = () => receiver.received.filter((d) => d.body.type === 'calibration.due' && d.body.data.id === data.id);
    await expect.poll(() => dueEvents().length, { timeout: 10_000 }).toBe(1);
    expect(dueEvents()[0]!.body.data).toMatchObject({ id: data.id, sensor_id: org.sensors.pressure, active: true });
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(dueEvents()).toHaveLength(1);
  });

  it('refuses bad thresholds with a clear 4xx', async () => {
    const sensorId = org.sensors.temp!;
    expect((await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId })).status).toBe(422);
    expect((await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, min: 5, max: 1 })).status).toBe(422);
    expect((await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, max: 'hot' })).status).toBe(400);
    expect((await api('POST', '/v1/alarm-thresholds', { sensor_id: '00000000-0000-4000-8000-000000000000', max: 1 })).status).toBe(422);
    expect((await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, max: 1, severity: 'apocalyptic' })).status).toBe(400);
  });
});
