import { parseSort } from '../api/list-query.js';
import { ACTIVITY_SORTS, ALARM_SORTS, type AlarmFilter, findAlarm, listActivity, listAlarms } from '../alarms/alarms.repo.js';
import { ALARM_STATUSES, SEVERITIES } from '../alarms/alarms.schema.js';
import { ALARM_COMMENT_MAX, ALARM_NOTE_MAX, actorOf, AlarmService } from '../alarms/alarms.service.js';
import { HttpProblem } from '../http/problem.js';
import { findSensorsByIds } from '../inventory/sensors.repo.js';
import { isUuid } from '../storage/sql.js';
import { type ConsoleKit, type Form, forbidden } from './kit.js';

const PATH = '/console/alarms';
/** The API's statuses, and two of the console's own: open (active or acknowledged) and all. */
const STATUSES = ['open', ...ALARM_STATUSES, 'all'] as const;

/**
 * Alarms: the list with status and severity filters, and an alarm's page with its history and the
 * acknowledge, resolve and comment forms (the alarms service, as /v1/alarms uses it).
 */
export function registerAlarmPages(kit: ConsoleKit): void {
  const { db, events, config } = kit.services;
  const alarms = new AlarmService(db, events, config.publicUrl);

  kit.page(PATH, async (caller, request, reply) => {
    if (!caller.can('alarms:read')) return forbidden(kit, caller, reply, 'alarms:read');
    const query = request.query as { status?: string; severity?: string };
    const status = STATUSES.find((s) => s === query.status) ?? 'open';
    const severity = SEVERITIES.find((s) => s === query.severity);
    const filter: AlarmFilter = { severity };
    if (status === 'open') filter.open = true;
    else if (status !== 'all') filter.status = [status];
    const page = await listAlarms(db, caller.organization.id, filter, parseSort('-triggered_at', ALARM_SORTS, '-triggered_at'), {
      limit: 200,
      after: undefined,
    });
    const sensors = new Map(
      (await findSensorsByIds(db, caller.organization.id, [...new Set(page.items.map((a) => a.sensor_id))])).map((s) => [s.id, s]),
    );
    return kit.render(reply, caller, 'alarms', {
      title: 'Alarms',
      alarms: page.items.map((a) => ({ ...a, sensorName: sensors.get(a.sensor_id)?.name ?? sensors.get(a.sensor_id)?.key ?? '—' })),
      status,
      severity: severity ?? '',
      statuses: STATUSES,
      severities: SEVERITIES,
    });
  });

  const showAlarm = async (
    caller: Parameters<Parameters<ConsoleKit['page']>[1]>[0],
    reply: Parameters<ConsoleKit['render']>[0],
    id: string,
    extra: Form = {},
    status = 200,
  ) => {
    const alarm = isUuid(id) ? await findAlarm(db, caller.organization.id, id) : undefined;
    if (!alarm) return kit.render(reply, caller, 'message', { title: 'Not found', message: 'That alarm does not exist.' }, 404);
    const [sensor] = await findSensorsByIds(db, caller.organization.id, [alarm.sensor_id]);
    const history = await listActivity(db, caller.organization.id, id, parseSort('at', ACTIVITY_SORTS, 'at'), {
      limit: 500,
      after: undefined,
    });
    return kit.render(
      reply,
      caller,
      'alarm',
      {
        title: 'Alarm',
        alarm,
        sensor,
        history: history.items,
        canWrite: caller.can('alarms:write'),
        commentMax: ALARM_COMMENT_MAX,
        error: undefined,
        ...extra,
      },
      status,
    );
  };

  kit.page(`${PATH}/:id`, async (caller, request, reply) => {
    if (!caller.can('alarms:read')) return forbidden(kit, caller, reply, 'alarms:read');
    const notice = (request.query as { done?: string }).done;
    return showAlarm(caller, reply, (request.params as { id: string }).id, { notice: notice ? `Alarm ${notice}.` : undefined });
  });

  kit.page(
    `${PATH}/:id/:action`,
    async (caller, request, reply) => {
      if (!caller.can('alarms:write')) return forbidden(kit, caller, reply, 'alarms:write');
      const { id, action } = request.params as { id: string; action: string };
      const form = request.body as Form;
      const text = typeof form.note === 'string' ? form.note.trim() : '';
      // The bounds of /v1: a comment is longer than an acknowledgement's or resolution's note.
      const max = action === 'comment' ? ALARM_COMMENT_MAX : ALARM_NOTE_MAX;
      if (text.length > max) return showAlarm(caller, reply, id, { error: `At most ${max.toLocaleString('en')} characters.` }, 400);
      if (!isUuid(id)) return showAlarm(caller, reply, id);
      const actor = actorOf(caller.principal);
      const organizationId = caller.organization.id;
      try {
        if (action === 'acknowledge') await alarms.acknowledge(organizationId, id, actor, text || null);
        else if (action === 'resolve') await alarms.resolve(organizationId, id, actor, text || null);
        else if (action === 'comment') {
          if (text === '') return showAlarm(caller, reply, id, { error: 'Write a comment first.' }, 400);
          await alarms.comment(organizationId, id, actor, text);
        } else return kit.render(reply, caller, 'message', { title: 'Not found', message: 'No such action.' }, 404);
      } catch (error) {
        if (error instanceof HttpProblem && error.status < 500) return showAlarm(caller, reply, id, { error: error.message }, error.status);
        throw error;
      }
      const done = { acknowledge: 'acknowledged', resolve: 'resolved', comment: 'commented' }[action];
      return reply.redirect(`${PATH}/${id}?done=${done}`, 303);
    },
    'POST',
  );
}
