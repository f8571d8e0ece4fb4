import envSchema from 'env-schema';
import { type Static, Type } from 'typebox';

/**
 * Every environment variable the server reads, in one schema: its type, range and default. It is
 * read and checked once at start (`loadConfig`), and each module takes what it needs from the
 * typed result (`config.env`). README's configuration table describes the same variables.
 */

const int = (fallback: number, minimum: number, maximum: number, description: string) =>
  Type.Integer({ default: fallback, minimum, maximum, description });
const GiB = 1024 * 1024 * 1024;

export const ENVIRONMENT = Type.Object({
  PORT: int(8080, 0, 65535, 'TCP port (0: a free one)'),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  DATA_DIR: Type.String({ default: 'data', minLength: 1, description: 'where the embedded database lives' }),
  DATABASE_URL: Type.Optional(
    Type.String({ pattern: '^postgres(ql)?://', description: 'use this PostgreSQL instead of the embedded database' }),
  ),
  DATABASE_REPLICA_URL: Type.Optional(
    Type.String({
      pattern: '^postgres(ql)?://',
      description: "a streaming replica of DATABASE_URL's database for the heavy reads that may lag: readings ranges and bins",
    }),
  ),
  PUBLIC_URL: Type.Optional(Type.String({ description: 'the OAuth issuer and the base of every absolute link' })),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  SENSORCLOUD_PROVISION: Type.Optional(Type.String({ description: 'a provisioning file applied at start' })),
  BODY_LIMIT: int(10 * 1024 * 1024, 1024, GiB, 'largest request body, bytes'),
  TRUST_PROXY: Type.Optional(Type.String({ description: 'proxy addresses/CIDRs, or a hop count' })),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'keep abuse counters in Redis' })),

  OAUTH_RATE_LIMIT_IP: int(3000, 0, 1e9, 'requests per window per address on the OAuth endpoints (0: off)'),
  OAUTH_RATE_LIMIT_CLIENT: int(6000, 0, 1e9, 'token and device-authorization requests per window per client (0: off)'),
  OAUTH_RATE_LIMIT_WINDOW: int(60, 1, 86_400, 'rate-limit window, seconds'),
  OAUTH_DEVICE_INTERVAL: int(5, 1, 60, 'device-code polling interval, seconds'),
  OAUTH_DEVICE_CODE_TTL: int(600, 60, 86_400, 'device-code lifetime, seconds'),
  OAUTH_REFRESH_TOKEN_TTL: int(90 * 86_400, 60, 10 * 365 * 86_400, 'refresh-token lifetime for clients that set none, seconds'),
  OAUTH_REFRESH_REUSE_GRACE: int(10, 0, 300, 'seconds during which a spent refresh token presented again revokes nothing'),
  OAUTH_PURGE_INTERVAL: int(300, 1, 86_400, 'seconds between purges of expired tokens and codes'),

  OAUTH_PASSWORD_FREE_FAILURES: int(5, 1, 100_000, 'failed passwords of one account from one address before its back-off'),
  OAUTH_CLIENT_FREE_FAILURES: int(10, 1, 100_000, 'failed secrets of one client from one address before its back-off'),
  ABUSE_SOURCE_FREE_FAILURES: int(30, 1, 100_000, 'failed argon2id-checked credentials from one address before it waits'),
  ABUSE_BEARER_FREE_FAILURES: int(100, 1, 100_000, 'failed bearer credentials from one address before it waits'),
  ABUSE_USER_CODE_FREE_FAILURES: int(10, 1, 100_000, 'wrong device user codes from one address before it waits'),

  SECRETS_KEY: Type.Optional(
    Type.String({
      description:
        '32 random bytes, base64: encrypts stored webhook secrets, signs unsubscribe links (default: DATA_DIR/secrets.key, generated)',
    }),
  ),
  WEBHOOK_RETRY_SCHEDULE: Type.String({
    default: '5s,30s,2m,10m,30m,1h,3h,6h,12h,24h',
    description: 'delays after each failed delivery attempt, comma-separated (s, m, h, d)',
  }),
  WEBHOOK_TIMEOUT: int(10, 1, 120, 'seconds a webhook receiver has to answer'),
  WEBHOOK_CONCURRENCY: int(64, 1, 10_000, 'webhook deliveries in flight per server process'),
  WEBHOOK_ALLOW_PRIVATE: Type.Boolean({ default: false, description: 'allow webhook URLs on private, loopback and link-local addresses' }),
  ALARM_CHECK_INTERVAL: int(
    5,
    1,
    3600,
    'seconds between checks for silent sensors, excursions whose delay ran out and calibrations come due',
  ),
  SMTP_URL: Type.Optional(
    Type.String({
      pattern: '^smtps?://',
      description: 'mail server for alarm notifications (smtp://user:pass@host:587, smtps://…:465); unset: email is off',
    }),
  ),
  SMTP_FROM: Type.String({ default: 'sensorcloud <alarms@localhost>', minLength: 3, description: 'sender of notification emails' }),
  NOTIFICATION_CHECK_INTERVAL: int(30, 1, 3600, 'seconds between checks for notifications to repeat or escalate'),
  GRAPHIQL: Type.Boolean({ default: false, description: 'serve the GraphiQL explorer at /graphiql (for development)' }),
  GRAPHQL_MAX_DEPTH: int(8, 2, 50, 'deepest selection a GraphQL query may nest'),
  GRAPHQL_MAX_COST: int(
    50_000,
    100,
    10_000_000,
    'largest estimated cost of a GraphQL query (each list field counts its page size times its selection)',
  ),
  EVENT_RETENTION_DAYS: int(30, 7, 3650, 'days events (and their delivery log) are kept; at least the retry schedule'),
  READINGS_RETENTION_DAYS: int(0, 0, 36_500, 'days readings are kept for organizations without a period of their own (0: forever)'),
  AUDIT_RETENTION_DAYS: int(365, 1, 3650, 'days audit log entries (/v1/audit-events) are kept'),

  SQL_ACCESS_HOST: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'host handed to SQL-access logins, in production a read replica (default: the host of DATABASE_URL)',
    }),
  ),
  SQL_ACCESS_PORT: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 65535, description: 'port handed to SQL-access logins (default: that of DATABASE_URL)' }),
  ),
  SQL_ACCESS_DATABASE: Type.Optional(
    Type.String({ minLength: 1, maxLength: 63, description: 'database handed to SQL-access logins (default: that of DATABASE_URL)' }),
  ),
  SQL_ACCESS_STATEMENT_TIMEOUT: int(60, 1, 86_400, 'seconds one statement of an SQL-access login may run'),
  SQL_ACCESS_CONNECTION_LIMIT: int(5, 1, 1000, 'concurrent connections of one SQL-access login'),
  MQTT_PORT: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 65535, description: 'serve MQTT 3.1.1 and 5 on this TCP port (0: a free one); off when unset' }),
  ),
  MQTT_WS_PORT: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 65535, description: 'with MQTT_PORT: the same broker over WebSocket on this port' }),
  ),
  MQTT_URL: Type.Optional(
    Type.String({
      pattern: '^(mqtts?|wss?)://',
      description: 'instead of the built-in broker, consume $share/sensorcloud/devices/+/readings from this MQTT 5 broker',
    }),
  ),
  MQTT_CLIENT_ID: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 200,
      description: "with MQTT_URL: this node's client id prefix (default sensorcloud-HOSTNAME-PORT)",
    }),
  ),
  MQTT_SUBSCRIBERS: int(8, 1, 256, 'with MQTT_URL: connections of this node in the shared subscription (messages in flight at once)'),

  INGEST_MAX_READINGS: int(10_000, 1, 1_000_000, 'most readings in one ingest batch'),
  INGEST_MAX_BYTES: Type.Optional(
    Type.Integer({ minimum: 1, maximum: GiB, description: 'largest ingest body, bytes (default BODY_LIMIT)' }),
  ),
});

export type Environment = Static<typeof ENVIRONMENT>;

export class ConfigError extends Error {}

/** The variables of `env`, checked, converted and defaulted; empty values count as unset. */
export function readEnvironment(env: NodeJS.ProcessEnv): Environment {
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  try {
    return envSchema<Environment>({ schema: ENVIRONMENT, data: given, env: false, dotenv: false });
  } catch (error) {
    const issues = (error as { errors?: { instancePath: string; message?: string }[] }).errors;
    if (!issues) throw error;
    throw new ConfigError(
      issues
        .map(({ instancePath, message }) => {
          const name = instancePath.replace(/^\//, '');
          return `${name} ${message ?? 'is invalid'}, got "${given[name]}"`;
        })
        .join('; '),
    );
  }
}
