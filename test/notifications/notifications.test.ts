import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveMember } from '../../src/identity/accounts.js';
import { apiKey } from '../api/support.js';
import { type SeededOrg, addSensor, seedOrganization } from '../readings/fixtures.js';
import { type TestServer, serverBackends, startTestServer } from '../support/server.js';
import { type SmtpSink, startSmtpSink } from './smtp.js';

/**
 * Alarm notifications by email end to end (issue 13, "People are told"), against a real SMTP
 * server started here: the right recipients (users named and members of groups named, nobody
 * else, nobody of another organization); repeats until acknowledged; escalation after its delay;
 * quiet hours hold a warning but not a critical alarm; the unsubscribe link and the preference
 * stop emails; a mail server down for a while loses nothing and duplicates nothing.
 */

const ENV = { NOTIFICATION_CHECK_INTERVAL: '1', ALARM_CHECK_INTERVAL: '60' };
const POLL = { timeout: 10_000, interval: 100 };

describe.each(serverBackends)('notifications ($name)', (backend) => {
  let smtp: SmtpSink;
  let server: TestServer;
  let org: SeededOrg;
  let key: string;
  const people: Record<string, { id: string; email: string }> = {};
  let groupId: string;
  let outsider: { id: string };
  const tag = `${backend.name}-${Math.random().toString(36).slice(2, 8)}`;

  beforeAll(async () => {
    smtp = await startSmtpSink();
    server = await startTestServer({ backend: backend.name, env: { ...ENV, SMTP_URL: smtp.url }, exactPublicUrl: true });
    org = await seedOrganization(server.db, `nt-${tag}`);
    key = await apiKey(server.db, { id: org.organizationId, ownerId: org.userId }, ['alarms:read', 'alarms:write']);
    for (const name of ['alice', 'bob', 'carol', 'dave', 'eve']) {
      const user = await saveMember(server.db, org.organizationId, { email: `${name}-${tag}@example.test`, role: 'member', name });
      people[name] = { id: user.id, email: user.email };
    }
    const group = await server.db
      .insertInto('groups')
      .values({ organization_id: org.organizationId, name: 'night shift' })
      .returning('id')
      .executeTakeFirstOrThrow();
    groupId = group.id;
    await server.db
      .insertInto('group_users')
      .values([people.bob!, people.carol!].map((p) => ({ organization_id: org.organizationId, group_id: groupId, user_id: p.id })))
      .execute();
    const other = await seedOrganization(server.db, `nt-other-${tag}`);
    outsider = { id: other.userId };
  });
  afterAll(async () => {
    await server?.stop();
    await smtp?.stop();
  });

  async function api(method: string, path: string, body?: unknown, token = key) {
    const response = await server.fetch(path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, data: text ? JSON.parse(text) : undefined };
  }
  async function ingest(sensor: string, value: number) {
    const response = await server.fetch('/v1/ingest', {
      method: 'POST',
      headers: { authorization: `Bearer ${org.deviceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ sensor, ts: new Date().toISOString(), value }]),
    });
    expect(response.status, await response.text()).toBe(200);
  }
  /** A sensor with a threshold `max` of `severity`, and a rule for it; answers the ids. */
  async function watched(sensorKey: string, severity: string, rule: Record<string, unknown>) {
    const sensorId = org.sensors[sensorKey] ?? (await addSensor(server.db, org, sensorKey));
    const threshold = await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, max: 8, severity });
    expect(threshold.status).toBe(201);
    const created = await api('POST', '/v1/notification-rules', { threshold_id: threshold.data.data.id, ...rule });
    expect(created.status, JSON.stringify(created.data)).toBe(201);
    return { sensorId, thresholdId: threshold.data.data.id as string, ruleId: created.data.data.id as string };
  }
  async function alarmOf(thresholdId: string) {
    const list = await api('GET', `/v1/alarms?threshold_id=${thresholdId}`);
    return list.data.data[0] as { id: string; status: string };
  }
  const subjects = (person: string, alarmId?: string) =>
    smtp
      .to(people[person]!.email)
      .filter((m) => alarmId === undefined || m.headers.get('x-sensorcloud-alarm') === alarmId)
      .map((m) => m.subject);

  it('rules: validated, tenant-scoped (another organization’s ids are 422), listed', async () => {
    const sensorId = org.sensors.other!;
    const threshold = (await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, max: 100 })).data.data;
    const bad = async (body: unknown) => (await api('POST', '/v1/notification-rules', body)).status;
    expect(await bad({ user_ids: [people.alice!.id] })).toBe(422); // no target
    expect(await bad({ threshold_id: threshold.id, group_id: groupId, user_ids: [people.alice!.id] })).toBe(422);
    expect(await bad({ threshold_id: threshold.id })).toBe(422); // nobody to tell
    expect(await bad({ threshold_id: threshold.id, user_ids: [outsider.id] })).toBe(422);
    expect(await bad({ threshold_id: threshold.id, user_ids: ['nope'] })).toBe(400);
    expect(await bad({ threshold_id: threshold.id, user_ids: [people.alice!.id], escalate_after_seconds: 60 })).toBe(422);
    expect(await bad({ threshold_id: threshold.id, user_ids: [people.alice!.id], min_severity: 'loud' })).toBe(400);
    const created = await api('POST', '/v1/notification-rules', {
      threshold_id: threshold.id,
      user_ids: [people.alice!.id],
      group_ids: [groupId],
      min_severity: 'critical',
    });
    expect(created.status).toBe(201);
    expect(created.data.data).toMatchObject({
      threshold_id: threshold.id,
      group_id: null,
      user_ids: [people.alice!.id],
      group_ids: [groupId],
      min_severity: 'critical',
      repeat_every_seconds: null,
      enabled: true,
    });
    const id = created.data.data.id;
    expect((await api('PATCH', `/v1/notification-rules/${id}`, { enabled: false, group_ids: [] })).data.data).toMatchObject({
      enabled: false,
      group_ids: [],
      user_ids: [people.alice!.id],
    });
    expect((await api('GET', `/v1/notification-rules?threshold_id=${threshold.id}`)).data.data.map((r: any) => r.id)).toEqual([id]);
    expect((await api('DELETE', `/v1/notification-rules/${id}`)).status).toBe(204);
    expect((await api('GET', `/v1/notification-rules/${id}`)).status).toBe(404);
  });

  it('tells the users and group members a rule names, nobody else; each email on the alarm’s history', async () => {
    const { thresholdId } = await watched('temp', 'critical', { user_ids: [people.alice!.id], group_ids: [groupId] });
    await ingest('temp', 9.4);
    const alarm = await alarmOf(thresholdId);
    for (const person of ['alice', 'bob', 'carol']) {
      await expect.poll(() => subjects(person, alarm.id), POLL).toEqual(['[CRITICAL] Device 1 temp above 8 (9.4)']);
    }
    expect(subjects('dave')).toEqual([]);
    const mail = smtp.to(people.alice!.email)[0]!;
    expect(mail.text).toContain(`${server.config.publicUrl.replace(/\/$/, '')}/v1/alarms/${alarm.id}`);
    expect(mail.text).toMatch(/\/notifications\/unsubscribe\?token=/);
    expect(mail.html).toContain('Open the alarm');
    expect(mail.from).toBe('alarms@localhost');
    await expect
      .poll(async () => {
        const history = (await api('GET', `/v1/alarms/${alarm.id}/history`)).data.data as any[];
        return history
          .filter((h) => h.action === 'notified')
          .map((h) => h.note)
          .sort();
      }, POLL)
      .toEqual([people.alice!.email, people.bob!.email, people.carol!.email].sort());

    expect((await api('POST', `/v1/alarms/${alarm.id}/acknowledge`)).status).toBe(200);
    await expect
      .poll(() => subjects('bob', alarm.id), POLL)
      .toEqual(['[CRITICAL] Device 1 temp above 8 (9.4)', '[ACKNOWLEDGED] Device 1 temp above 8 (9.4)']);
  });

  it('repeats until acknowledged, escalates to the second list after its delay, then stops', async () => {
    const { thresholdId } = await watched('humidity', 'warning', {
      user_ids: [people.dave!.id],
      repeat_every_seconds: 1,
      escalate_after_seconds: 2,
      escalation_user_ids: [people.eve!.id],
    });
    await ingest('humidity', 50);
    const alarm = await alarmOf(thresholdId);
    await expect
      .poll(() => subjects('dave', alarm.id).filter((s) => s.startsWith('[WARNING] Not acknowledged yet')).length, POLL)
      .toBeGreaterThanOrEqual(2);
    await expect.poll(() => subjects('eve', alarm.id), POLL).toContain('[WARNING] Escalated: Device 1 humidity above 8 (50)');
    expect((await api('POST', `/v1/alarms/${alarm.id}/acknowledge`)).status).toBe(200);
    await expect.poll(() => subjects('eve', alarm.id), POLL).toContain('[ACKNOWLEDGED] Device 1 humidity above 8 (50)');
    // Whatever was already on its way is out within a turn; after that, nothing more.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const counts = [subjects('dave', alarm.id).length, subjects('eve', alarm.id).length];
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect([subjects('dave', alarm.id).length, subjects('eve', alarm.id).length]).toEqual(counts);
    expect(subjects('eve', alarm.id).filter((s) => s.includes('Escalated'))).toHaveLength(1);
    const history = (await api('GET', `/v1/alarms/${alarm.id}/history`)).data.data as any[];
    expect(history.filter((h) => h.action === 'escalated').map((h) => h.note)).toEqual([people.eve!.email]);
    expect(history.filter((h) => h.action === 'notified' && h.note === people.dave!.email).length).toBeGreaterThanOrEqual(3);
  });

  it('quiet hours hold a warning until they end, a critical alarm still goes', async () => {
    const alice = people.alice!;
    const aliceKey = await apiKey(server.db, { id: org.organizationId, ownerId: alice.id }, ['alarms:read']);
    const hour = new Date().getUTCHours();
    const at = (h: number) => `${String((h + 24) % 24).padStart(2, '0')}:00`;
    const quiet = { start: at(hour - 1), end: at(hour + 2), timezone: 'UTC' };
    expect(
      (await api('PATCH', '/v1/me/notification-preferences', { quiet_hours: { ...quiet, timezone: 'Mars/Olympus' } }, aliceKey)).status,
    ).toBe(422);
    expect((await api('PATCH', '/v1/me/notification-preferences', { quiet_hours: { ...quiet, start: '25:00' } }, aliceKey)).status).toBe(
      400,
    );
    const set = await api('PATCH', '/v1/me/notification-preferences', { quiet_hours: quiet }, aliceKey);
    expect(set.status).toBe(200);
    expect(set.data.data).toMatchObject({ email_enabled: true, quiet_hours: quiet });

    const warning = await watched('q-warn', 'warning', { user_ids: [alice.id] });
    const critical = await watched('q-crit', 'critical', { user_ids: [alice.id] });
    await ingest('q-warn', 20);
    await ingest('q-crit', 21);
    const [warned, paged] = [await alarmOf(warning.thresholdId), await alarmOf(critical.thresholdId)];
    await expect.poll(() => subjects('alice', paged.id), POLL).toEqual(['[CRITICAL] Device 1 test above 8 (21)']);
    const held = await server.db
      .selectFrom('notification_tasks')
      .select(['state', 'next_attempt_at'])
      .where('alarm_id', '=', warned.id)
      .executeTakeFirstOrThrow();
    expect(held.state).toBe('pending');
    expect(held.next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 60 * 60_000);
    expect(subjects('alice', warned.id)).toEqual([]);
    expect((await api('PATCH', '/v1/me/notification-preferences', { quiet_hours: null }, aliceKey)).data.data.quiet_hours).toBeNull();
  });

  it('when quiet hours end, a held email goes out unless its alarm was handled meanwhile', async () => {
    const dave = people.dave!;
    const daveKey = await apiKey(server.db, { id: org.organizationId, ownerId: dave.id }, ['alarms:read']);
    const hour = new Date().getUTCHours();
    const at = (h: number) => `${String((h + 24) % 24).padStart(2, '0')}:00`;
    const quiet = { start: at(hour - 1), end: at(hour + 2), timezone: 'UTC' };
    expect((await api('PATCH', '/v1/me/notification-preferences', { quiet_hours: quiet }, daveKey)).status).toBe(200);
    const handled = await watched('q-handled', 'warning', { user_ids: [dave.id] });
    const waiting = await watched('q-waiting', 'warning', { user_ids: [dave.id] });
    await ingest('q-handled', 20);
    await ingest('q-waiting', 20);
    const [handledAlarm, waitingAlarm] = [await alarmOf(handled.thresholdId), await alarmOf(waiting.thresholdId)];
    const tasksOf = (alarmId: string) =>
      server.db.selectFrom('notification_tasks').select(['state', 'held_until', 'last_error']).where('alarm_id', '=', alarmId).execute();
    await expect.poll(async () => (await tasksOf(handledAlarm.id))[0]?.held_until, POLL).toBeTruthy();
    await expect.poll(async () => (await tasksOf(waitingAlarm.id))[0]?.held_until, POLL).toBeTruthy();
    expect((await api('POST', `/v1/alarms/${handledAlarm.id}/acknowledge`, {})).status).toBe(200);

    // Quiet hours end: both held emails come due.
    expect((await api('PATCH', '/v1/me/notification-preferences', { quiet_hours: null }, daveKey)).status).toBe(200);
    // Brought due at every poll: a worker that claimed a task just before the change (with the
    // quiet hours it read then) holds it again until their old end, overwriting a single update.
    const bringDue = () =>
      server.db
        .updateTable('notification_tasks')
        .set({ next_attempt_at: new Date() })
        .where('alarm_id', 'in', [handledAlarm.id, waitingAlarm.id])
        .where('state', '=', 'pending')
        .execute();
    await expect
      .poll(async () => {
        await bringDue();
        return subjects('dave', waitingAlarm.id);
      }, POLL)
      .toHaveLength(1);
    await expect
      .poll(async () => {
        await bringDue();
        return (await tasksOf(handledAlarm.id))[0]?.state;
      }, POLL)
      .toBe('cancelled');
    expect((await tasksOf(handledAlarm.id))[0]?.last_error).toBe('the alarm was acknowledged during quiet hours');
    expect(subjects('dave', handledAlarm.id)).toEqual([]);
  });

  it('the unsubscribe link and the preference stop emails', async () => {
    const bobMail = smtp.to(people.bob!.email)[0]!;
    const link = /(https?:\/\/\S+\/notifications\/unsubscribe\?token=\S+)/.exec(bobMail.text)![1]!;
    const path = new URL(link).pathname + new URL(link).search;
    // Following the link (as a mail scanner would) changes nothing; the page's button, or a mail
    // client's RFC 8058 one-click POST, unsubscribes.
    const page = await server.fetch(path);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('<form method="post"');
    const bobKeyBefore = await apiKey(server.db, { id: org.organizationId, ownerId: people.bob!.id }, ['alarms:read']);
    expect((await api('GET', '/v1/me/notification-preferences', undefined, bobKeyBefore)).data.data.email_enabled).toBe(true);
    const oneClick = await server.fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(oneClick.status).toBe(200);
    expect(await oneClick.text()).toContain('Unsubscribed');
    // mailparser gathers the List-* headers under `list`.
    expect(bobMail.headers.get('list')).toMatchObject({ 'unsubscribe-post': { name: 'List-Unsubscribe=One-Click' } });
    const forged = await server.fetch(`/notifications/unsubscribe?token=${people.carol!.id}.AAAA`, { method: 'POST' });
    expect(forged.status).toBe(404);

    const carolKey = await apiKey(server.db, { id: org.organizationId, ownerId: people.carol!.id }, ['alarms:read']);
    expect((await api('PATCH', '/v1/me/notification-preferences', { email_enabled: false }, carolKey)).data.data.email_enabled).toBe(false);
    const bobKey = await apiKey(server.db, { id: org.organizationId, ownerId: people.bob!.id }, ['alarms:read']);
    expect((await api('GET', '/v1/me/notification-preferences', undefined, bobKey)).data.data.email_enabled).toBe(false);

    const { thresholdId } = await watched('u-1', 'critical', { group_ids: [groupId], user_ids: [people.alice!.id] });
    await ingest('u-1', 30);
    const alarm = await alarmOf(thresholdId);
    await expect.poll(() => subjects('alice', alarm.id), POLL).toHaveLength(1);
    await expect
      .poll(async () => {
        const rows = await server.db
          .selectFrom('notification_tasks')
          .select(['user_id', 'state'])
          .where('alarm_id', '=', alarm.id)
          .execute();
        return rows.filter((r) => r.state === 'skipped').length;
      }, POLL)
      .toBe(2);
    expect(subjects('bob', alarm.id)).toEqual([]);
    expect(subjects('carol', alarm.id)).toEqual([]);
  });

  it('a mail server down for a while loses nothing: every email arrives once when it is back', async () => {
    // A rule on a group of sensors this time.
    const sensors = await Promise.all(['o-1', 'o-2', 'o-3'].map((k) => addSensor(server.db, org, k)));
    const sensorGroup = await server.db
      .insertInto('groups')
      .values({ organization_id: org.organizationId, name: 'cold room' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await server.db
      .insertInto('group_sensors')
      .values(sensors.map((sensor_id) => ({ organization_id: org.organizationId, group_id: sensorGroup.id, sensor_id })))
      .execute();
    for (const sensorId of sensors) {
      expect((await api('POST', '/v1/alarm-thresholds', { sensor_id: sensorId, max: 8, severity: 'critical' })).status).toBe(201);
    }
    const rule = await api('POST', '/v1/notification-rules', { group_id: sensorGroup.id, user_ids: [people.alice!.id, people.dave!.id] });
    expect(rule.status).toBe(201);

    await smtp.stop();
    for (const k of ['o-1', 'o-2', 'o-3']) await ingest(k, 12);
    // Attempts fail while it is down.
    await expect
      .poll(async () => {
        const rows = await server.db.selectFrom('notification_tasks').select('attempts').where('rule_id', '=', rule.data.data.id).execute();
        return rows.length === 6 && rows.every((r) => r.attempts >= 1);
      }, POLL)
      .toBe(true);
    await smtp.start();
    const ids = (person: string) =>
      smtp
        .to(people[person]!.email)
        .filter((m) => m.subject === '[CRITICAL] Device 1 test above 8 (12)')
        .map((m) => m.headers.get('x-sensorcloud-notification'));
    await expect.poll(() => ids('alice').length + ids('dave').length, { timeout: 15_000, interval: 200 }).toBe(6);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (const person of ['alice', 'dave']) {
      expect(ids(person)).toHaveLength(3);
      expect(new Set(ids(person)).size).toBe(3);
    }
  });
});
