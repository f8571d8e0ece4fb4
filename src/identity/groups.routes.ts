import { Type } from 'typebox';
import { principalOf } from '../auth/guard.js';
import { setGroupUsers } from './groups.repo.js';
import {
  GROUP_SORTS,
  addGroupUsers,
  deleteGroup,
  findGroupById,
  groupUserIds,
  insertGroup,
  listGroupsPage,
  removeGroupUsers,
  updateGroup,
} from './group-admin.repo.js';
import { MEMBER_SORTS, listMemberViews, membersOfGroups } from './members.repo.js';
import { addGroupSensors, groupSensorIds, removeGroupSensors, setGroupSensors } from '../inventory/group-sensors.repo.js';
import { SENSOR_SORTS, listSensors, sensorsOfGroups } from '../inventory/sensors.repo.js';
import { SensorResource } from '../inventory/sensors.routes.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import type { Db } from '../storage/database.js';
import type { Group } from '../storage/schema.js';
import { guarded as dbGuarded } from '../api/db-errors.js';
import { IdParams, Nullable, SearchQuery, Text, Timestamp, found, iso, secured } from '../api/kit.js';
import { type ResourceType, envelopeSchema, sendCollection, sendNoContent, sendResource } from '../api/documents.js';
import { pageQueryProperties, pageRequest, parseSort } from '../api/list-query.js';
import { ownedBy } from '../api/compound.js';
import { resourceRoutes } from '../api/resource-routes.js';
import { MemberResource } from './users.routes.js';

/** Groups: named sets of users and sensors (alarm routing, dashboards, access grouping). */

/** A group with its members' ids; a group `include` loaded (through a person, a rule) has them only once they are included too. */
export type GroupView = Group & { user_ids?: string[]; sensor_ids?: string[] };

export const GroupResource: ResourceType<GroupView> = {
  type: 'groups',
  id: (row) => row.id,
  path: (row) => `/v1/groups/${row.id}`,
  attributes: (row) => ({ name: row.name, description: row.description, created_at: iso(row.created_at) }),
  relationships: {
    users: {
      type: 'users',
      field: 'user_ids',
      many: true,
      get: (row) => row.user_ids,
      related: (row) => `/v1/groups/${row.id}/users`,
      include: {
        byOwners: async (db, organizationId, groupIds, limit) =>
          ownedBy(await membersOfGroups(db, organizationId, groupIds, limit), 'group_id'),
      },
    },
    sensors: {
      type: 'sensors',
      field: 'sensor_ids',
      many: true,
      get: (row) => row.sensor_ids,
      related: (row) => `/v1/groups/${row.id}/sensors`,
      include: {
        byOwners: async (db, organizationId, groupIds, limit) =>
          ownedBy(await sensorsOfGroups(db, organizationId, groupIds, limit), 'group_id'),
      },
    },
  },
};

const Uuid = Type.String({ format: 'uuid' });
const GroupJson = Type.Object({
  id: Uuid,
  name: Type.String(),
  description: Nullable(Type.String()),
  created_at: Timestamp(),
  user_ids: Type.Array(Uuid),
  sensor_ids: Type.Array(Uuid),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const Ids = (what: string) => Type.Array(Uuid, { maxItems: 10_000, description: `${what} of this organization.` });
const GroupCreate = Type.Object(
  {
    name: Text(),
    description: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
    user_ids: Type.Optional(Ids('Users')),
    sensor_ids: Type.Optional(Ids('Sensors')),
  },
  { additionalProperties: false },
);
const GroupUpdate = Type.Partial(GroupCreate, { additionalProperties: false });
const UserIdsBody = Type.Object({ user_ids: Type.Array(Uuid, { minItems: 1, maxItems: 10_000 }) }, { additionalProperties: false });
const SensorIdsBody = Type.Object({ sensor_ids: Type.Array(Uuid, { minItems: 1, maxItems: 10_000 }) }, { additionalProperties: false });

const SubListQuery = Type.Object({ ...pageQueryProperties }, { additionalProperties: false });

const CONSTRAINTS = {
  unique: { groups_org_name_key: 'A group with this name already exists.' },
  foreignKey: {
    group_users_member_fk: { pointer: '/body/user_ids', detail: 'user_ids contains an id that is not a user of this organization' },
    group_sensors_sensor_fk: { pointer: '/body/sensor_ids', detail: 'sensor_ids contains an id that is not a sensor of this organization' },
  },
};

async function views(db: Db, organizationId: string, groups: Group[]): Promise<GroupView[]> {
  const ids = groups.map((g) => g.id);
  const [users, sensors] = await Promise.all([groupUserIds(db, organizationId, ids), groupSensorIds(db, organizationId, ids)]);
  return groups.map((g) => ({ ...g, user_ids: users.get(g.id) ?? [], sensor_ids: sensors.get(g.id) ?? [] }));
}

async function view(db: Db, organizationId: string, id: string): Promise<GroupView | undefined> {
  const group = await findGroupById(db, organizationId, id);
  return group ? (await views(db, organizationId, [group]))[0] : undefined;
}

export function registerGroupRoutes(app: App, services: AppServices): void {
  const { bearer, db, config } = services;
  const tags = ['groups'];
  /** A change of the members of a group of the organization; false when it has no such group. */
  const changeMembers = async (organizationId: string, id: string, change: () => Promise<unknown>): Promise<boolean> => {
    if (!(await findGroupById(db, organizationId, id))) return false;
    await dbGuarded(change, CONSTRAINTS);
    return true;
  };
  const groups = resourceRoutes(app, services, {
    path: '/v1/groups',
    resource: GroupResource,
    schema: GroupJson,
    noun: 'group',
    tags,
    scopes: { read: ['groups:read'], write: ['groups:write'] },
    relationships: { users: 'user_ids', sensors: 'sensor_ids' },
    // JSON:API POST/DELETE on /v1/groups/{id}/relationships/users|sensors: the same changes as the member routes below.
    members: {
      users: {
        add: ({ organizationId, id, ids }) => changeMembers(organizationId, id, () => addGroupUsers(db, organizationId, id, ids)),
        remove: ({ organizationId, id, ids }) => changeMembers(organizationId, id, () => removeGroupUsers(db, organizationId, id, ids)),
      },
      sensors: {
        add: ({ organizationId, id, ids }) => changeMembers(organizationId, id, () => addGroupSensors(db, organizationId, id, ids)),
        remove: ({ organizationId, id, ids }) => changeMembers(organizationId, id, () => removeGroupSensors(db, organizationId, id, ids)),
      },
    },
  });

  groups.list(
    {
      summary: 'List groups',
      sorts: GROUP_SORTS,
      defaultSort: 'name',
      filters: {
        name: Type.Optional(Type.String({ maxLength: 200 })),
        user_id: Type.Optional(Type.String({ maxLength: 100 })),
        sensor_id: Type.Optional(Type.String({ maxLength: 100 })),
        q: SearchQuery,
      },
    },
    async ({ organizationId, query: q, sort, page }) => {
      const groupPage = await listGroupsPage(
        db,
        organizationId,
        { name: q.name, q: q.q, userId: q.user_id, sensorId: q.sensor_id },
        sort,
        page,
      );
      return { ...groupPage, items: await views(db, organizationId, groupPage.items) };
    },
  );

  groups.get({ summary: 'Get a group' }, ({ organizationId, id }) => view(db, organizationId, id));

  // The group and its members in one transaction: a foreign member id leaves no group behind.
  groups.create({ summary: 'Create a group', body: GroupCreate }, async ({ organizationId, body }) => {
    const id = await dbGuarded(
      () =>
        db.transaction().execute(async (tx) => {
          const group = await insertGroup(tx, organizationId, body.name, body.description ?? null);
          await addGroupUsers(tx, organizationId, group.id, body.user_ids ?? []);
          await addGroupSensors(tx, organizationId, group.id, body.sensor_ids ?? []);
          return group.id;
        }),
      CONSTRAINTS,
    );
    return found(await view(db, organizationId, id));
  });

  groups.update(
    {
      summary: 'Update a group (user_ids / sensor_ids replace the members)',
      putSummary: 'Update a group (PUT, same as PATCH)',
      body: GroupUpdate,
    },
    async ({ organizationId, id, body }) => {
      const updated = await dbGuarded(
        () =>
          db.transaction().execute(async (tx) => {
            const group = await updateGroup(tx, organizationId, id, { name: body.name, description: body.description });
            if (!group) return undefined;
            if (body.user_ids) await setGroupUsers(tx, organizationId, group.id, [...new Set(body.user_ids)]);
            if (body.sensor_ids) await setGroupSensors(tx, organizationId, group.id, body.sensor_ids);
            return group.id;
          }),
        CONSTRAINTS,
      );
      return updated ? view(db, organizationId, updated) : undefined;
    },
  );

  groups.remove({ summary: 'Delete a group (its users and sensors stay)' }, ({ organizationId, id }) =>
    deleteGroup(db, organizationId, id),
  );

  // Members of a group, as collections of users and sensors.

  app.get(
    '/v1/groups/:id/users',
    secured(bearer, ['groups:read', 'users:read'], { tags, summary: "List a group's users", params: IdParams, querystring: SubListQuery }),
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      const group = found(await findGroupById(db, organizationId, request.params.id), 'group');
      const page = await listMemberViews(
        db,
        organizationId,
        { groupId: group.id },
        parseSort(undefined, MEMBER_SORTS, 'email'),
        pageRequest(request.query),
      );
      return sendCollection(config.publicUrl, request, reply, MemberResource, page);
    },
  );

  app.post(
    '/v1/groups/:id/users',
    {
      ...secured(bearer, ['groups:write'], {
        tags,
        summary: 'Add users to a group',
        params: IdParams,
        body: UserIdsBody,
        response: { 200: envelopeSchema(GroupJson) },
      }),
    },
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      const group = found(await findGroupById(db, organizationId, request.params.id), 'group');
      await dbGuarded(() => addGroupUsers(db, organizationId, group.id, request.body.user_ids), CONSTRAINTS);
      return sendResource(config.publicUrl, request, reply, GroupResource, found(await view(db, organizationId, group.id)));
    },
  );

  app.delete(
    '/v1/groups/:id/users/:userId',
    secured(bearer, ['groups:write'], {
      tags,
      summary: 'Remove a user from a group',
      params: Type.Object({ id: Type.String({ maxLength: 100 }), userId: Type.String({ maxLength: 100 }) }),
      response: { 204: Type.Null() },
    }),
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      found(await findGroupById(db, organizationId, request.params.id), 'group');
      found((await removeGroupUsers(db, organizationId, request.params.id, [request.params.userId])) || undefined, 'group member');
      return sendNoContent(reply);
    },
  );

  app.get(
    '/v1/groups/:id/sensors',
    secured(bearer, ['groups:read', 'devices:read'], {
      tags,
      summary: "List a group's sensors",
      params: IdParams,
      querystring: SubListQuery,
    }),
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      const group = found(await findGroupById(db, organizationId, request.params.id), 'group');
      const page = await listSensors(
        db,
        organizationId,
        { groupId: group.id },
        parseSort(undefined, SENSOR_SORTS, 'key'),
        pageRequest(request.query),
      );
      return sendCollection(config.publicUrl, request, reply, SensorResource, page);
    },
  );

  app.post(
    '/v1/groups/:id/sensors',
    {
      ...secured(bearer, ['groups:write'], {
        tags,
        summary: 'Add sensors to a group',
        params: IdParams,
        body: SensorIdsBody,
        response: { 200: envelopeSchema(GroupJson) },
      }),
    },
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      const group = found(await findGroupById(db, organizationId, request.params.id), 'group');
      await dbGuarded(() => addGroupSensors(db, organizationId, group.id, request.body.sensor_ids), CONSTRAINTS);
      return sendResource(config.publicUrl, request, reply, GroupResource, found(await view(db, organizationId, group.id)));
    },
  );

  app.delete(
    '/v1/groups/:id/sensors/:sensorId',
    secured(bearer, ['groups:write'], {
      tags,
      summary: 'Remove a sensor from a group',
      params: Type.Object({ id: Type.String({ maxLength: 100 }), sensorId: Type.String({ maxLength: 100 }) }),
      response: { 204: Type.Null() },
    }),
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      found(await findGroupById(db, organizationId, request.params.id), 'group');
      found((await removeGroupSensors(db, organizationId, request.params.id, [request.params.sensorId])) || undefined, 'group sensor');
      return sendNoContent(reply);
    },
  );
}
