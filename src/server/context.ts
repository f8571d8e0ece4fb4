import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { AbuseGuard } from '../abuse/guard.js';
import type { BearerAuthenticator } from '../auth/bearer.js';
import type { Config } from '../config/config.js';
import type { Db } from '../storage/database.js';
import type { EventOutbox } from '../events/outbox.js';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { JobRunner } from '../jobs/runner.js';
import type { OAuthRuntime } from '../oauth/runtime.js';
import type { InvalidationListener } from '../storage/invalidations.js';
import type { ReadReplica } from '../storage/read-replica.js';

/** The Fastify instance every module registers on (built by server/app.ts). */
// biome-ignore lint/suspicious/noExplicitAny: the raw server, request and reply types of whichever server Fastify was given (plain HTTP here, any in tests).
export type App = FastifyInstance<any, any, any, FastifyBaseLogger, TypeBoxTypeProvider>;

/** What a server is built from: configuration and storage. */
export interface AppContext {
  config: Config;
  db: Db;
  databaseKind: 'embedded' | 'postgres';
  /** The streaming replica of DATABASE_REPLICA_URL; modules reach it through `readReplica`. */
  replicaDb?: Db | undefined;
}

/** What every route module is given: the context plus the shared per-server services. */
export interface AppServices extends AppContext {
  /** The one bearer check; credential kinds register their resolvers on it. */
  bearer: BearerAuthenticator;
  /** Brute-force and abuse protection of every credential check (abuse/guard.ts). */
  abuse: AbuseGuard;
  /** Revocations, rotations and deletions announced by any node; each cache subscribes (storage/invalidations.ts). */
  invalidations: InvalidationListener;
  /** Periodic work, one node at a time (jobs/runner.ts). */
  jobs: JobRunner;
  /** The one way readings are stored; modules add stages and after-commit effects (ingest/pipeline.ts). */
  ingest: IngestPipeline;
  /** The transactional event outbox: producers emit in their transaction, consumers register (events/outbox.ts). */
  events: EventOutbox;
  /**
   * The authorization server's grants, tokens and client authentication: its endpoints (oauth/)
   * and the vendor profiles in front of it (vendors/) issue every token through it.
   */
  oauth: OAuthRuntime;
  /**
   * Where heavy reads that may lag the latest writes go (ranges and bins of readings): the replica,
   * or the primary when there is none or it fails (storage/read-replica.ts).
   */
  readReplica: ReadReplica;
  /** The /metrics registry: a module registers its own series on it (http/observability.ts). */
  metrics: Registry;
}
