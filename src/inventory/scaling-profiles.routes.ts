import { Type } from 'typebox';
import { guarded as dbGuarded } from '../api/db-errors.js';
import { Nullable, SearchQuery, Text, Timestamp, found, iso } from '../api/kit.js';
import type { ResourceType } from '../api/documents.js';
import { ownedBy } from '../api/compound.js';
import { resourceRoutes } from '../api/resource-routes.js';
import { sensorsOfScalingProfiles } from './sensors.repo.js';
import { type FieldError, HttpProblem } from '../http/problem.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import type { ScalingKind, ScalingPoint, ScalingProfile } from './inventory.schema.js';
import { pointsProblem } from './scaling.js';
import {
  SCALING_PROFILE_SORTS,
  type ScalingProfileFields,
  deleteScalingProfile,
  findScalingProfile,
  insertScalingProfile,
  listScalingProfiles,
  replaceScalingProfile,
} from './scaling-profiles.repo.js';

export const ScalingProfileResource: ResourceType<ScalingProfile> = {
  type: 'scaling-profiles',
  id: (row) => row.id,
  path: (row) => `/v1/scaling-profiles/${row.id}`,
  attributes: (row) => ({
    name: row.name,
    description: row.description,
    kind: row.kind,
    scale: row.scale,
    offset: row.offset,
    points: row.points,
    unit: row.unit,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
  relationships: {
    sensors: {
      type: 'sensors',
      field: 'sensor_ids',
      many: true,
      get: () => undefined,
      related: (row) => `/v1/sensors?scaling_profile_id=${row.id}`,
      include: {
        byOwners: async (db, organizationId, ids, limit) =>
          ownedBy(await sensorsOfScalingProfiles(db, organizationId, ids, limit), 'scaling_profile_id'),
      },
    },
  },
};

const Kind = Type.Union([Type.Literal('linear'), Type.Literal('piecewise_linear')], {
  description: 'linear: value = raw × scale + offset; piecewise_linear: interpolation between points.',
});
const Point = Type.Object({ raw: Type.Number(), value: Type.Number() }, { additionalProperties: false });
const Points = Type.Array(Point, {
  minItems: 2,
  maxItems: 1000,
  description: 'piecewise_linear: points sorted by strictly increasing raw value.',
});

const ScalingProfileJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  description: Nullable(Type.String()),
  kind: Kind,
  scale: Nullable(Type.Number()),
  offset: Nullable(Type.Number()),
  points: Nullable(Type.Array(Point)),
  unit: Nullable(Type.String()),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const Fields = {
  name: Text(),
  description: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
  kind: Kind,
  scale: Type.Optional(Type.Number({ description: 'linear: multiplier (required for linear).' })),
  offset: Type.Optional(Type.Number({ description: 'linear: added after scaling (default 0).' })),
  points: Type.Optional(Points),
  unit: Type.Optional(Nullable(Type.String({ maxLength: 32 }))),
};
const ScalingProfileCreate = Type.Object(Fields, { additionalProperties: false });
const ScalingProfileUpdate = Type.Partial(ScalingProfileCreate, { additionalProperties: false });

const UNIQUE = { unique: { scaling_profiles_org_name_key: 'A scaling profile with this name already exists.' } };

interface ProfileInput {
  name?: string | undefined;
  description?: string | null | undefined;
  kind?: ScalingKind | undefined;
  scale?: number | undefined;
  offset?: number | undefined;
  points?: ScalingPoint[] | undefined;
  unit?: string | null | undefined;
}

/** Merges input over the current definition and checks the result is a complete profile of its kind (422 otherwise). */
export function resolveProfile(input: ProfileInput, current?: ScalingProfile): ScalingProfileFields {
  const kind = input.kind ?? current?.kind ?? 'linear';
  const merged: ScalingProfileFields = {
    name: input.name ?? current?.name ?? '',
    description: input.description !== undefined ? input.description : (current?.description ?? null),
    kind,
    scale: input.scale ?? current?.scale ?? null,
    offset: input.offset ?? current?.offset ?? (kind === 'linear' ? 0 : null),
    points: input.points ?? current?.points ?? null,
    unit: input.unit !== undefined ? input.unit : (current?.unit ?? null),
  };
  const errors: FieldError[] = [];
  if (kind === 'linear') {
    if (merged.scale === null) errors.push({ pointer: '/body/scale', detail: 'scale is required for a linear profile' });
    if (input.points !== undefined) errors.push({ pointer: '/body/points', detail: 'points apply to piecewise_linear profiles only' });
  } else {
    if (!merged.points) errors.push({ pointer: '/body/points', detail: 'points are required for a piecewise_linear profile' });
    else {
      const problem = pointsProblem(merged.points);
      if (problem) errors.push({ pointer: '/body/points', detail: `points ${problem}` });
    }
    if (input.scale !== undefined || input.offset !== undefined)
      errors.push({ pointer: '/body/scale', detail: 'scale and offset apply to linear profiles only' });
  }
  if (errors.length) throw new HttpProblem({ status: 422, detail: errors.map((e) => e.detail).join('; '), errors });
  return merged;
}

export function registerScalingProfileRoutes(app: App, services: AppServices): void {
  const { db } = services;
  const profiles = resourceRoutes(app, services, {
    path: '/v1/scaling-profiles',
    resource: ScalingProfileResource,
    schema: ScalingProfileJson,
    noun: 'scaling profile',
    tags: ['scaling-profiles'],
    scopes: { read: ['devices:read'], write: ['devices:write'] },
  });

  profiles.list(
    {
      summary: 'List scaling profiles',
      sorts: SCALING_PROFILE_SORTS,
      defaultSort: 'name',
      filters: { kind: Type.Optional(Kind), q: SearchQuery },
    },
    ({ organizationId, query, sort, page }) => listScalingProfiles(db, organizationId, { kind: query.kind, q: query.q }, sort, page),
  );

  profiles.get({ summary: 'Get a scaling profile' }, ({ organizationId, id }) => findScalingProfile(db, organizationId, id));

  profiles.create({ summary: 'Create a scaling profile', body: ScalingProfileCreate }, async ({ organizationId, body }) => {
    const fields = resolveProfile(body);
    return dbGuarded(() => insertScalingProfile(db, organizationId, fields), UNIQUE);
  });

  // A partial update must still leave a complete profile of its (possibly new) kind.
  profiles.update(
    {
      summary: 'Update a scaling profile (applies to readings ingested from now on)',
      putSummary: 'Update a scaling profile (PUT, same as PATCH)',
      body: ScalingProfileUpdate,
    },
    async ({ organizationId, id, body }) => {
      const current = found(await findScalingProfile(db, organizationId, id), 'scaling profile');
      const fields = resolveProfile(body, current);
      return dbGuarded(() => replaceScalingProfile(db, organizationId, current.id, fields), UNIQUE);
    },
  );

  profiles.remove({ summary: 'Delete a scaling profile (its sensors report raw values from then on)' }, ({ organizationId, id }) =>
    deleteScalingProfile(db, organizationId, id),
  );
}
