/**
 * The scenario of issue #16's SQL access: the BI report "daily min/max/avg per sensor over 30
 * days" of an organization with SQL_SENSORS sensors of minute data, run as its reporting login
 * through `reporting.readings` (security-barrier view keyed on the login and client address),
 * against the same report on the base tables as the owner, in the same database (which also
 * holds the bench tenant's readings). PostgreSQL only.
 */
import pg from 'pg';
import { loadConfig } from '../src/config/config.js';
import { SYSTEM } from '../src/audit/audit.repo.js';
import { SqlAccessService, sqlAccessSettings } from '../src/sql-access/sql-access.service.js';
import { openDatabase } from '../src/storage/database.js';
import { TSX, runNode } from './lib/proc.js';
import type { LoadResult } from './lib/load-types.js';
import type { Context, Prepared, Scenario } from './scenarios.js';

const DAY = 86_400_000;
const DAYS = 30;
const SLUG = 'bench-sql';

const VIEW_QUERY = `select sensor_id, date_trunc('day', ts) as day, min(value), max(value), avg(value)
  from reporting.readings where ts >= $1 and ts < $2 group by 1, 2`;
const BASE_QUERY = `select r.sensor_id, date_trunc('day', r.ts) as day, min(r.value), max(r.value), avg(r.value)
  from readings r join sensors s on s.id = r.sensor_id
  where s.organization_id = $3 and r.ts >= $1 and r.ts < $2 group by 1, 2`;

interface Prepared30Days {
  organizationId: string;
  loginUrl: string;
  from: string;
  to: string;
}

/** Seeds the organization once per bench database and gives it a login; shared by both sides. */
const prepared = new Map<string, Promise<Prepared30Days>>();

async function prepare(databaseUrl: string, sensors: number): Promise<Prepared30Days> {
  const end = Math.floor(Date.now() / DAY) * DAY;
  const from = new Date(end - DAYS * DAY).toISOString();
  const to = new Date(end).toISOString();
  const owner = new pg.Client({ connectionString: databaseUrl });
  await owner.connect();
  let organizationId: string;
  try {
    const org = await owner.query<{ id: string }>('insert into organizations (slug, name) values ($1, $1) returning id', [SLUG]);
    organizationId = org.rows[0]!.id;
    await owner.query(
      `with d as (insert into devices (organization_id, serial, name) values ($1, 'SQL-1', 'report device') returning id)
       insert into sensors (organization_id, device_id, key, kind, unit)
       select $1, d.id, 's' || i, 'temperature', '°C' from d, generate_series(1, $2) i`,
      [organizationId, sensors],
    );
    // Minute data, in time order as ingest writes it.
    await owner.query(
      `insert into readings (organization_id, sensor_id, ts, value, raw_value)
       select $1, s.id, t, 20 + 5 * sin(extract(epoch from t) / 3600 + s.n), 20
       from generate_series($2::timestamptz, $3::timestamptz - interval '1 minute', interval '1 minute') t
       cross join (select id, row_number() over (order by id) as n from sensors where organization_id = $1) s
       order by t`,
      [organizationId, from, to],
    );
    await owner.query('analyze readings');
    await owner.query('analyze sensors');
  } finally {
    await owner.end();
  }
  const { login, password } = await withService(databaseUrl, (service) =>
    service.enable(organizationId, ['127.0.0.1/32', '::1/128'], operator(organizationId)),
  );
  const url = new URL(databaseUrl);
  url.username = login.username;
  url.password = password;
  return { organizationId, loginUrl: url.toString(), from, to };
}

const operator = (organizationId: string) => ({ audit: { ...SYSTEM, organizationId }, userId: null });

async function withService<T>(databaseUrl: string, run: (service: SqlAccessService) => Promise<T>): Promise<T> {
  const handle = await openDatabase({ databaseUrl, poolSize: 1 });
  try {
    return await run(new SqlAccessService(handle.db, 'postgres', sqlAccessSettings(loadConfig({ DATABASE_URL: databaseUrl }))));
  } finally {
    await handle.close();
  }
}

/** Drops the scenario's login (roles outlive the bench database): call before dropping it. */
export async function releaseSqlAccessLogin(databaseUrl: string): Promise<void> {
  const ready = prepared.get(databaseUrl);
  if (!ready) return;
  prepared.delete(databaseUrl);
  const { organizationId } = await ready;
  await withService(databaseUrl, (service) => service.disable(organizationId, operator(organizationId)));
}

function runner(databaseUrl: string, query: string, params: unknown[]) {
  return async (duration: number): Promise<LoadResult> => {
    const out = await runNode([...TSX, 'bench/refs/sql-query.ts'], {
      DATABASE_URL: databaseUrl,
      QUERY: query,
      PARAMS: JSON.stringify(params),
      DURATION: String(duration),
    });
    return JSON.parse(out.trim().split('\n').pop() ?? '') as LoadResult;
  };
}

function once(ctx: Context): Promise<Prepared30Days> | undefined {
  if (!ctx.databaseUrl) return undefined;
  const databaseUrl = ctx.databaseUrl;
  let entry = prepared.get(databaseUrl);
  if (!entry) {
    entry = prepare(databaseUrl, ctx.cfg.sqlSensors);
    prepared.set(databaseUrl, entry);
  }
  return entry;
}

export const sqlAccessScenario: Scenario = {
  id: 'sql-access',
  title: '12. SQL access: daily min/max/avg per sensor over 30 days',
  kind: 'latency',
  unit: 'reports/s',
  multiplier: () => 1,
  connections: () => 1,
  target: '≤ 1.5× the time of the same report on the base tables as the owner',
  check: (sc, ref) => (ref ? sc.rate >= ref.rate / 1.5 : undefined),
  async sensorcloud(ctx): Promise<Prepared> {
    const ready = once(ctx);
    if (!ready) return { unavailable: 'PostgreSQL only' };
    const { loginUrl, from, to } = await ready;
    return runner(loginUrl, VIEW_QUERY, [from, to]);
  },
  reference: {
    name: 'the owner on the base tables',
    perBackend: true,
    async prepare(ctx): Promise<Prepared> {
      const ready = once(ctx);
      if (!ready || !ctx.databaseUrl) return { unavailable: 'PostgreSQL only' };
      const { organizationId, from, to } = await ready;
      return runner(ctx.databaseUrl, BASE_QUERY, [from, to, organizationId]);
    },
  },
};
