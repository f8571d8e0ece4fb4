import { Type } from 'typebox';
import { type ResourceType, collectionSchema, envelopeSchema, sendCollection, sendResource } from '../api/documents.js';
import { IdParams, Nullable, Timestamp, found, iso, secured } from '../api/kit.js';
import { jsonApiBody, optionalJsonApiBody } from '../api/json-api-body.js';
import { pageQueryProperties, pageRequest, parseSort, sortQueryProperty } from '../api/list-query.js';
import { resourceRegistry } from '../api/compound.js';
import { resourceRoutes } from '../api/resource-routes.js';
import { principalOf } from '../auth/guard.js';
import type { App, AppServices } from '../server/context.js';
import { AlarmResource } from './alarm-json.js';
import {
  ACTIVITY_SORTS,
  ALARM_SORTS,
  COMMENT_SORTS,
  findAlarm,
  findComment,
  listActivity,
  listAlarms,
  listComments,
} from './alarms.repo.js';
import { ALARM_STATUSES, type AlarmActivity, type AlarmComment, type AlarmStatus } from './alarms.schema.js';
import { ALARM_COMMENT_MAX, ALARM_NOTE_MAX, type AlarmService, actorOf } from './alarms.service.js';
import { Severity } from './thresholds.routes.js';

const Uuid = Type.String({ format: 'uuid' });
const Status = Type.Enum([...ALARM_STATUSES]);
const AlarmJson = Type.Object({
  id: Uuid,
  sensor_id: Uuid,
  threshold_id: Nullable(Uuid),
  kind: Type.Enum(['range', 'offline']),
  status: Status,
  severity: Severity,
  condition: Type.Enum(['above_max', 'below_min', 'offline']),
  value: Nullable(Type.Number({ description: 'The reading that triggered it (range alarms).' })),
  limit: Nullable(Type.Number({ description: 'The limit crossed, or the offline period in seconds.' })),
  started_at: Timestamp('When the condition began.'),
  triggered_at: Timestamp(),
  acknowledged_at: Nullable(Timestamp()),
  acknowledged_by: Nullable(Type.String({ description: 'The user who acknowledged it (null: an application).' })),
  resolved_at: Nullable(Timestamp()),
  resolved_by: Nullable(Type.String()),
  resolution: Nullable(Type.String({ description: '`auto` (back to normal) or `user`.' })),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const ActivityResource: ResourceType<AlarmActivity> = {
  type: 'alarm-activity',
  id: (row) => row.id,
  path: (row) => `/v1/alarms/${row.alarm_id}/history#${row.id}`,
  attributes: (row) => ({
    action: row.action,
    actor_kind: row.actor_kind,
    actor_user_id: row.actor_user_id,
    note: row.note,
    at: iso(row.at),
  }),
};
const ActivityJson = Type.Object({
  id: Uuid,
  action: Type.String({ description: 'triggered, acknowledged, resolved, commented, notified, escalated' }),
  actor_kind: Type.Enum(['system', 'user', 'client']),
  actor_user_id: Nullable(Uuid),
  note: Nullable(Type.String()),
  at: Timestamp(),
  links: Type.Object({ self: Type.String() }),
});

const CommentResource: ResourceType<AlarmComment> = {
  type: 'alarm-comments',
  id: (row) => row.id,
  path: (row) => `/v1/alarms/${row.alarm_id}/comments/${row.id}`,
  attributes: (row) => ({ body: row.body, author_user_id: row.author_user_id, created_at: iso(row.created_at) }),
};
const CommentJson = Type.Object({
  id: Uuid,
  body: Type.String(),
  author_user_id: Nullable(Uuid),
  created_at: Timestamp(),
  links: Type.Object({ self: Type.String() }),
});

const Note = Type.Object({ note: Type.Optional(Nullable(Type.String({ maxLength: ALARM_NOTE_MAX }))) }, { additionalProperties: false });
const CommentBody = Type.Object({ body: Type.String({ minLength: 1, maxLength: ALARM_COMMENT_MAX }) }, { additionalProperties: false });

export function registerAlarmRoutes(app: App, services: AppServices, alarms: AlarmService): void {
  const { db, bearer, config } = services;
  const tags = ['alarms'];
  const routes = resourceRoutes(app, services, {
    path: '/v1/alarms',
    resource: AlarmResource,
    schema: AlarmJson,
    noun: 'alarm',
    tags,
    scopes: { read: ['alarms:read'], write: ['alarms:write'] },
  });

  routes.list(
    {
      summary: 'List alarms, newest first',
      sorts: ALARM_SORTS,
      defaultSort: '-triggered_at',
      filters: {
        status: Type.Optional(
          Type.Array(Status, { maxItems: 3, description: 'One or more statuses (status=active&status=acknowledged).' }),
        ),
        open: Type.Optional(Type.Boolean({ description: 'true: active or acknowledged; false: resolved.' })),
        sensor_id: Type.Optional(Type.String({ maxLength: 100 })),
        threshold_id: Type.Optional(Type.String({ maxLength: 100 })),
        severity: Type.Optional(Severity),
        kind: Type.Optional(Type.Enum(['range', 'offline'])),
        from: Type.Optional(Timestamp('Triggered at or after this instant.')),
        to: Type.Optional(Timestamp('Triggered before this instant.')),
      },
    },
    ({ organizationId, query: q, sort, page }) =>
      listAlarms(
        db,
        organizationId,
        {
          status: q.status as AlarmStatus[] | undefined,
          open: q.open,
          sensorId: q.sensor_id,
          thresholdId: q.threshold_id,
          severity: q.severity,
          kind: q.kind,
          from: q.from ? new Date(q.from) : undefined,
          to: q.to ? new Date(q.to) : undefined,
        },
        sort,
        page,
      ),
  );

  routes.get({ summary: 'Get an alarm' }, ({ organizationId, id }) => findAlarm(db, organizationId, id));
  // Comments are served below, as the alarm's; registered so that `include=comments` can render them.
  resourceRegistry(services).register(CommentResource, CommentJson, ['alarms:read']);

  // The note is optional, and so is the body that carries it (flat, or a JSON:API document).
  const acknowledgeBody = optionalJsonApiBody({ type: AlarmResource.type, idParam: 'id' });
  for (const action of ['acknowledge', 'resolve'] as const) {
    app.post(
      `/v1/alarms/:id/${action}`,
      {
        ...secured(bearer, ['alarms:write'], {
          tags,
          summary:
            action === 'acknowledge'
              ? 'Acknowledge an active alarm (409 once acknowledged or resolved)'
              : 'Resolve an open alarm (409 once resolved)',
          params: IdParams,
          body: Note,
          response: { 200: envelopeSchema(AlarmJson) },
        }),
        preValidation: acknowledgeBody,
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const note = request.body.note ?? null;
        const alarm =
          action === 'acknowledge'
            ? await alarms.acknowledge(principal.organizationId, request.params.id, actorOf(principal), note)
            : await alarms.resolve(principal.organizationId, request.params.id, actorOf(principal), note);
        return sendResource(config.publicUrl, request, reply, AlarmResource, alarm);
      },
    );
  }

  const listQuery = (sorts: Parameters<typeof sortQueryProperty>[0], fallback: string) =>
    Type.Object({ ...pageQueryProperties, sort: sortQueryProperty(sorts, fallback) }, { additionalProperties: false });

  app.get(
    '/v1/alarms/:id/comments',
    secured(bearer, ['alarms:read'], {
      tags,
      summary: 'Comments on an alarm, oldest first',
      params: IdParams,
      querystring: listQuery(COMMENT_SORTS, 'created_at'),
      response: { 200: collectionSchema(CommentJson) },
    }),
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      found(await findAlarm(db, organizationId, request.params.id), 'alarm');
      const sort = parseSort(request.query.sort, COMMENT_SORTS, 'created_at');
      const page = await listComments(db, organizationId, request.params.id, sort, pageRequest(request.query));
      return sendCollection(config.publicUrl, request, reply, CommentResource, page);
    },
  );

  app.get(
    '/v1/alarms/:id/comments/:comment_id',
    secured(bearer, ['alarms:read'], {
      tags,
      summary: 'One comment on an alarm',
      params: Type.Object({ id: IdParams.properties.id, comment_id: Type.String({ maxLength: 100 }) }),
      response: { 200: envelopeSchema(CommentJson) },
    }),
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      const comment = found(await findComment(db, organizationId, request.params.id, request.params.comment_id), 'comment');
      return sendResource(config.publicUrl, request, reply, CommentResource, comment);
    },
  );

  app.post(
    '/v1/alarms/:id/comments',
    {
      ...secured(bearer, ['alarms:write'], {
        tags,
        summary: 'Comment on an alarm',
        params: IdParams,
        body: CommentBody,
        response: { 201: envelopeSchema(CommentJson) },
      }),
      preValidation: jsonApiBody({ type: CommentResource.type }),
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const comment = await alarms.comment(principal.organizationId, request.params.id, actorOf(principal), request.body.body);
      return sendResource(config.publicUrl, request, reply, CommentResource, comment, { status: 201 });
    },
  );

  app.get(
    '/v1/alarms/:id/history',
    secured(bearer, ['alarms:read'], {
      tags,
      summary: 'Who did what to an alarm, and when (triggered, acknowledged, commented, resolved, notified)',
      params: IdParams,
      querystring: listQuery(ACTIVITY_SORTS, 'at'),
      response: { 200: collectionSchema(ActivityJson) },
    }),
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      found(await findAlarm(db, organizationId, request.params.id), 'alarm');
      const sort = parseSort(request.query.sort, ACTIVITY_SORTS, 'at');
      const page = await listActivity(db, organizationId, request.params.id, sort, pageRequest(request.query));
      return sendCollection(config.publicUrl, request, reply, ActivityResource, page);
    },
  );
}
