import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { messageId } from '../../src/events/event-types.js';
import { isPublicAddress, publicOnlyLookup } from '../../src/webhooks/destination.js';
import { parseRetrySchedule } from '../../src/webhooks/retry-schedule.js';
import { apiKey } from '../api/support.js';
import { type SeededOrg, seedOrganization } from '../readings/fixtures.js';
import { type TestServer, serverBackends, startTestServer } from '../support/server.js';
import { type Receiver, startReceiver } from './receiver.js';

/**
 * Webhooks end to end (issue 13): subscriptions over the API, events from ingest through the
 * outbox, deliveries verified by the `standardwebhooks` reference package, retries with the same
 * webhook-id, 410 and persistent failure disabling, secret rotation, the delivery log and
 * redelivery. A fast retry schedule stands in for the default two days.
 */

const ENV = { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_SCHEDULE: '50ms,100ms,150ms', WEBHOOK_TIMEOUT: '2' };

describe.each(serverBackends)('webhooks ($name)', (backend) => {
  let server: TestServer;
  let receiver: Receiver;
  let org: SeededOrg;
  let key: string;
  const sensor = () => Object.values(org.sensors)[0]!;

  beforeAll(async () => {
    server = await startTestServer({ backend: backend.name, env: ENV });
    receiver = await startReceiver();
    org = await seedOrganization(server.db, `wh-${backend.name}-${Math.random().toString(36).slice(2, 8)}`);
    key = await apiKey(server.db, { id: org.organizationId, ownerId: org.userId }, ['webhooks:read', 'webhooks:write', 'readings:write']);
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await server.fetch(path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, data: text ? JSON.parse(text) : undefined };
  };
  const ingest = (minutes: number[]) =>
    server.fetch('/v1/ingest', {
      method: 'POST',
      headers: { authorization: `Bearer ${org.deviceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(minutes.map((m) => ({ sensor: 'temp', ts: new Date(Date.UTC(2026, 5, 1, 0, m)).toISOString(), value: m }))),
    });
  const subscribe = async (url = receiver.url, eventTypes = ['reading.created']) => {
    const created = await api('POST', '/v1/webhooks', { url, event_types: eventTypes });
    expect(created.status, JSON.stringify(created.data)).toBe(201);
    return created.data.data as { id: string; secret: string };
  };

  /** What the server did to the subscription on its own (its creation through the API is on the record too: test/audit). */
  const auditOf = async (webhookId: string) =>
    (
      await server.db
        .selectFrom('audit_events')
        .select(['action', 'actor_kind', 'details', 'organization_id'])
        .where('target_id', '=', webhookId)
        .where('actor_kind', '=', 'system')
        .execute()
    ).map((row) => {
      expect(row.organization_id).toBe(org.organizationId);
      return { action: row.action, actor_kind: row.actor_kind, reason: (row.details as { reason?: string }).reason };
    });

  // Each test subscribes afresh: none may leave a subscription behind for the next (even failing).
  afterEach(async () => {
    receiver.answer = () => 200;
    await server.db.deleteFrom('webhooks').where('organization_id', '=', org.organizationId).execute();
  });

  it('shows the secret once, stores it sealed, and delivers signed events the reference package verifies', async () => {
    const hook = await subscribe();
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    receiver.secrets = [hook.secret];
    const stored = await server.db.selectFrom('webhooks').select('secret_sealed').where('id', '=', hook.id).executeTakeFirstOrThrow();
    expect(stored.secret_sealed).not.toContain(hook.secret.slice(6));
    const shown = await api('GET', `/v1/webhooks/${hook.id}`);
    expect(shown.data.data).not.toHaveProperty('secret');
    expect(shown.data.data).toMatchObject({ url: receiver.url, event_types: ['reading.created'], enabled: true, disabled_reason: null });

    receiver.received.length = 0;
    expect((await ingest([0, 1])).status).toBe(200);
    await expect.poll(() => receiver.received.length, { timeout: 10_000 }).toBe(2);
    for (const delivery of receiver.received) {
      expect(delivery.verifiedWith).toEqual([hook.secret]);
      expect(delivery.body.type).toBe('reading.created');
      expect(delivery.body.data).toMatchObject({ sensor_id: sensor(), raw_value: expect.any(Number) });
      expect(delivery.id).toMatch(/^msg_[0-9a-f]{32}$/);
    }
    expect(new Set(receiver.received.map((d) => d.id)).size).toBe(2);

    // The attempt is logged once the receiver has answered.
    await expect.poll(async () => (await api('GET', `/v1/webhooks/${hook.id}/deliveries`)).data.data.length, { timeout: 5_000 }).toBe(2);
    const log = await api('GET', `/v1/webhooks/${hook.id}/deliveries`);
    expect(log.data.data[0]).toMatchObject({ event_type: 'reading.created', attempt: 1, status_code: 200, next_attempt_at: null });
    expect(receiver.received.map((d) => d.id)).toContain(log.data.data[0].webhook_id);
    await api('DELETE', `/v1/webhooks/${hook.id}`);
  });

  it('a receiver failing for a while gets every event once it recovers, with the same webhook-id on every attempt', async () => {
    const hook = await subscribe();
    receiver.secrets = [hook.secret];
    receiver.received.length = 0;
    const failuresLeft = new Map<string, number>();
    receiver.answer = (request) => {
      const left = failuresLeft.get(request.id) ?? 2;
      failuresLeft.set(request.id, left - 1);
      return left > 0 ? 503 : 204;
    };
    expect((await ingest([10, 11, 12])).status).toBe(200);
    await expect.poll(() => receiver.received.filter((d) => d.status === 204).length, { timeout: 15_000 }).toBe(3);
    const byId = new Map<string, typeof receiver.received>();
    for (const d of receiver.received) byId.set(d.id, [...(byId.get(d.id) ?? []), d]);
    expect(byId.size).toBe(3);
    for (const attempts of byId.values()) {
      expect(attempts.map((a) => a.status)).toEqual([503, 503, 204]);
      expect(new Set(attempts.map((a) => JSON.stringify(a.body))).size).toBe(1);
      for (const a of attempts) expect(a.verifiedWith).toEqual([hook.secret]);
    }
    await expect.poll(async () => (await api('GET', `/v1/webhooks/${hook.id}/deliveries`)).data.data.length, { timeout: 5_000 }).toBe(9);
    const log = await api('GET', `/v1/webhooks/${hook.id}/deliveries?sort=created_at`);
    const first = log.data.data.filter((d: { webhook_id: string }) => d.webhook_id === receiver.received[0]!.id);
    expect(first.map((d: { attempt: number; status_code: number }) => [d.attempt, d.status_code])).toEqual([
      [1, 503],
      [2, 503],
      [3, 204],
    ]);
    expect(first[0].next_attempt_at).not.toBeNull();
    expect(first[2].next_attempt_at).toBeNull();
    receiver.answer = () => 200;
    await api('DELETE', `/v1/webhooks/${hook.id}`);
  });

  it('/metrics counts attempts by outcome, and shows the backlog of due deliveries and how late the oldest is', async () => {
    const metric = async (name: string) => {
      const text = await (await server.fetch('/metrics')).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.slice(name.length + 1));
    };
    const hook = await subscribe();
    receiver.secrets = [hook.secret];
    const deliveredBefore = (await metric('webhook_delivery_attempts_total{outcome="delivered"}')) ?? 0;
    const storedBefore = (await metric('ingest_readings_total')) ?? 0;
    expect((await ingest([70, 71])).status).toBe(200);
    await expect.poll(() => metric('webhook_delivery_attempts_total{outcome="delivered"}'), { timeout: 5_000 }).toBe(deliveredBefore + 2);
    expect(await metric('ingest_readings_total')).toBe(storedBefore + 2);
    expect(await metric('webhook_delivery_attempts_total{outcome="retrying"}')).toBeGreaterThan(0); // the previous test's 503s
    expect(await metric('webhook_deliveries_due')).toBe(0);
    expect(await metric('webhook_oldest_due_seconds')).toBe(0);

    // A delivery an hour overdue, leased by a node that died: due, and not yet made.
    const event = await server.db
      .selectFrom('webhook_tasks')
      .select('event_id')
      .where('webhook_id', '=', hook.id)
      .executeTakeFirstOrThrow();
    await server.db
      .updateTable('webhook_tasks')
      .set({ state: 'pending', next_attempt_at: new Date(Date.now() - 3_600_000), lease_expires_at: new Date(Date.now() + 3_600_000) })
      .where('webhook_id', '=', hook.id)
      .where('event_id', '=', event.event_id)
      .execute();
    expect(await metric('webhook_deliveries_due')).toBe(1);
    expect(await metric('webhook_oldest_due_seconds')).toBeGreaterThanOrEqual(3_600);
  });

  it('redelivers an event with the same webhook-id', async () => {
    const hook = await subscribe();
    receiver.secrets = [hook.secret];
    receiver.received.length = 0;
    await ingest([20]);
    await expect.poll(async () => (await api('GET', `/v1/webhooks/${hook.id}/deliveries`)).data.data.length, { timeout: 10_000 }).toBe(1);
    const log = await api('GET', `/v1/webhooks/${hook.id}/deliveries`);
    const delivery = log.data.data[0];
    const again = await api('POST', `/v1/webhooks/${hook.id}/deliveries/${delivery.id}/redeliver`);
    expect(again.status).toBe(202);
    await expect.poll(() => receiver.received.length, { timeout: 10_000 }).toBe(2);
    expect(receiver.received[1]!.id).toBe(receiver.received[0]!.id);
    expect(receiver.received[1]!.body).toEqual(receiver.received[0]!.body);
    expect((await api('POST', `/v1/webhooks/${hook.id}/deliveries/00000000-0000-4000-8000-000000000000/redeliver`)).status).toBe(404);
    // A disabled subscription sends nothing: redelivery says so.
    await api('PATCH', `/v1/webhooks/${hook.id}`, { enabled: false });
    expect((await api('POST', `/v1/webhooks/${hook.id}/deliveries/${delivery.id}/redeliver`)).status).toBe(409);
    await api('DELETE', `/v1/webhooks/${hook.id}`);
  });

  it('410 Gone disables the subscription', async () => {
    const hook = await subscribe();
    receiver.secrets = [hook.secret];
    receiver.received.length = 0;
    receiver.answer = () => 410;
    await ingest([30, 31]);
    await expect.poll(async () => (await api('GET', `/v1/webhooks/${hook.id}`)).data.data.enabled, { timeout: 10_000 }).toBe(false);
    expect((await api('GET', `/v1/webhooks/${hook.id}`)).data.data.disabled_reason).toBe('gone');
    expect(await auditOf(hook.id)).toEqual([{ action: 'webhook.disabled', actor_kind: 'system', reason: 'gone' }]);
    receiver.answer = () => 200;
    // Nothing more is sent to it, and its pending deliveries are dropped.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const sent = receiver.received.length;
    await ingest([32]);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(receiver.received.length).toBe(sent);
    // Enabled again, it receives new events.
    expect((await api('PATCH', `/v1/webhooks/${hook.id}`, { enabled: true })).data.data).toMatchObject({
      enabled: true,
      disabled_reason: null,
    });
    await ingest([33]);
    await expect.poll(() => receiver.received.some((d) => d.body.data.value === 33 && d.status === 200), { timeout: 10_000 }).toBe(true);
    await api('DELETE', `/v1/webhooks/${hook.id}`);
  });

  it('five events in a row failing every attempt disable the subscription as failing', async () => {
    const hook = await subscribe();
    receiver.secrets = [hook.secret];
    receiver.answer = () => 500;
    await ingest([40, 41, 42, 43, 44]);
    await expect
      .poll(async () => (await api('GET', `/v1/webhooks/${hook.id}`)).data.data, { timeout: 15_000 })
      .toMatchObject({
        enabled: false,
        disabled_reason: 'failing',
      });
    // One attempt more than the schedule has delays, per event.
    const log = await api('GET', `/v1/webhooks/${hook.id}/deliveries?limit=100`);
    expect(log.data.data).toHaveLength(5 * 4);
    // Disabled once, by the server, on the record (SPEC §8), in the transaction that disabled it.
    expect(await auditOf(hook.id)).toEqual([{ action: 'webhook.disabled', actor_kind: 'system', reason: 'failing' }]);
    receiver.answer = () => 200;
    await api('DELETE', `/v1/webhooks/${hook.id}`);
  });

  it('a rotated secret: both signatures for a while, each verifying alone', async () => {
    const hook = await subscribe();
    const rotated = await api('POST', `/v1/webhooks/${hook.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.headers.get('cache-control')).toBe('no-store');
    const secret = rotated.data.data.secret as string;
    expect(secret).not.toBe(hook.secret);
    expect(rotated.data.data.previous_secret_expires_at).not.toBeNull();
    receiver.secrets = [secret, hook.secret];
    receiver.received.length = 0;
    await ingest([50]);
    await expect.poll(() => receiver.received.length, { timeout: 10_000 }).toBe(1);
    expect(receiver.received[0]!.signatures).toHaveLength(2);
    expect(receiver.received[0]!.verifiedWith.sort()).toEqual([secret, hook.secret].sort());
    await api('DELETE', `/v1/webhooks/${hook.id}`);
  });

  it('a secret this node cannot decrypt (another SECRETS_KEY) holds its deliveries back, counted against nothing', async () => {
    const hook = await subscribe();
    receiver.received.length = 0;
    await server.db
      .updateTable('webhooks')
      .set({ secret_sealed: 'v1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAA' })
      .where('id', '=', hook.id)
      .execute();
    await ingest([60]);
    // Released unattempted, due again in a minute: no attempt logged, nothing sent, still enabled.
    const task = () =>
      server.db
        .selectFrom('webhook_tasks')
        .select(['state', 'attempts', 'lease_id', 'next_attempt_at'])
        .where('webhook_id', '=', hook.id)
        .executeTakeFirst();
    await expect.poll(async () => ((await task())?.next_attempt_at.getTime() ?? 0) > Date.now() + 30_000, { timeout: 10_000 }).toBe(true);
    expect(await task()).toMatchObject({ state: 'pending', attempts: 0, lease_id: null });
    expect((await api('GET', `/v1/webhooks/${hook.id}/deliveries`)).data.data).toEqual([]);
    expect((await api('GET', `/v1/webhooks/${hook.id}`)).data.data).toMatchObject({ enabled: true, disabled_reason: null });
    expect(receiver.received).toHaveLength(0);
  });

  it('refuses bad subscriptions with a clear 400', async () => {
    const bad = [
      { url: 'ftp://example.com/hook', event_types: ['alarm.triggered'] },
      { url: 'not a url', event_types: ['alarm.triggered'] },
      { url: 'https://example.com/hook', event_types: [] },
      { url: 'https://example.com/hook', event_types: ['alarm.exploded'] },
      { url: 'https://user:pw@example.com/hook', event_types: ['alarm.triggered'] },
    ];
    for (const body of bad) {
      const response = await api('POST', '/v1/webhooks', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
    }
  });
});

describe('webhook destinations', () => {
  it('only public unicast addresses count as public', () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '::1',
      'fe80::1',
      'fc00::1',
      '::ffff:127.0.0.1',
      '0.0.0.0',
      '100.64.0.1',
      '::7f00:1',
      '64:ff9b:1::a00:1',
      'fec0::1',
    ]) {
      expect(isPublicAddress(address), address).toBe(false);
    }
    for (const address of ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '::ffff:93.184.216.34'])
      expect(isPublicAddress(address), address).toBe(true);
  });

  it('refuses private destinations at subscription time unless WEBHOOK_ALLOW_PRIVATE', async () => {
    const server = await startTestServer({ env: {} });
    try {
      const org = await seedOrganization(server.db, `wh-private-${Math.random().toString(36).slice(2, 8)}`);
      const key = await apiKey(server.db, { id: org.organizationId, ownerId: org.userId }, ['webhooks:write']);
      for (const url of ['http://127.0.0.1:9/hook', 'http://localhost/hook', 'http://[::1]/hook', 'http://169.254.169.254/latest']) {
        const response = await server.fetch('/v1/webhooks', {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ url, event_types: ['alarm.triggered'] }),
        });
        expect(response.status, url).toBe(400);
        expect(((await response.json()) as { detail: string }).detail).toMatch(/private, loopback or link-local/);
      }
    } finally {
      await server.stop();
    }
  });

  it('refuses, at connection time, a name that resolves to a private address (DNS rebinding)', async () => {
    const error = await new Promise<Error | null>((resolve) => publicOnlyLookup('localhost', { all: false }, (e) => resolve(e)));
    expect(error?.message).toMatch(/non-public/);
  });

  it('reads the retry schedule, and refuses a bad one', () => {
    expect(parseRetrySchedule('5s,30s,2m,10m,30m,1h,3h,6h,12h,24h')).toEqual(
      [5, 30, 120, 600, 1800, 3600, 10800, 21600, 43200, 86400].map((s) => s * 1000),
    );
    expect(() => parseRetrySchedule('5s,soon')).toThrow(/not a delay/);
    expect(messageId('00000000-0000-4000-8000-000000000000')).toBe('msg_00000000000040008000000000000000');
  });
});
