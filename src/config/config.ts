import net from 'node:net';
import path from 'node:path';

/** Everything the server reads from its environment, parsed once at start. */
export interface Config {
  port: number;
  host: string;
  /**
   * Where the embedded database (and other local state) lives when DATABASE_URL is unset;
   * `undefined` (only by passing `{ dataDir: undefined }` as an override) keeps it in memory (tests).
   */
  dataDir: string | undefined;
  /** A PostgreSQL URL; when unset the embedded PGlite database in `dataDir` is used. */
  databaseUrl: string | undefined;
  /** The OAuth issuer and the base of every absolute link (RFC 8414 §3.3). */
  publicUrl: string;
  logLevel: string;
  /** YAML or JSON provisioning file applied at start (SPEC §7). */
  provisionFile: string | undefined;
  /** Largest request body accepted, in bytes. */
  bodyLimit: number;
  /**
   * Which proxies' X-Forwarded-For to believe (Fastify's `trustProxy`): none (false), a list of
   * addresses/CIDRs, or a number of hops. Per-address limits key on the caller's address, so
   * behind a reverse proxy this must be set or every caller shares the proxy's address; never a
   * blanket "any peer", which would let every caller choose its own address.
   */
  trustProxy: false | string[] | number;
  /** `redis://…`: keep the abuse counters in Redis instead of the database. */
  redisUrl: string | undefined;
}

export class ConfigError extends Error {}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function nonEmpty(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const port = overrides.port ?? integer(env, 'PORT', 8080, 0, 65535);
  const host = overrides.host ?? nonEmpty(env, 'HOST') ?? '127.0.0.1';
  const logLevel = overrides.logLevel ?? nonEmpty(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}, got "${logLevel}"`);
  }
  const databaseUrl = overrides.databaseUrl ?? nonEmpty(env, 'DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  // An IPv6 address (HOST=::) goes in brackets, or the default URL would not parse.
  const urlHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const publicUrl = normalizePublicUrl(overrides.publicUrl ?? nonEmpty(env, 'PUBLIC_URL') ?? `http://${urlHost}:${port}`);
  return {
    port,
    host,
    dataDir: Object.hasOwn(overrides, 'dataDir')
      ? overrides.dataDir && path.resolve(overrides.dataDir)
      : path.resolve(nonEmpty(env, 'DATA_DIR') ?? 'data'),
    databaseUrl,
    publicUrl,
    logLevel,
    provisionFile: overrides.provisionFile ?? nonEmpty(env, 'SENSORCLOUD_PROVISION'),
    bodyLimit: overrides.bodyLimit ?? integer(env, 'BODY_LIMIT', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    trustProxy: overrides.trustProxy ?? parseTrustProxy(nonEmpty(env, 'TRUST_PROXY')),
    redisUrl: Object.hasOwn(overrides, 'redisUrl') ? overrides.redisUrl : redisUrl(env),
  };
}

function normalizePublicUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`PUBLIC_URL must be an absolute URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('PUBLIC_URL must use http or https');
  }
  if (url.search || url.hash) throw new ConfigError('PUBLIC_URL must not carry a query or fragment');
  // The issuer is compared byte for byte by clients: keep one canonical form without a trailing slash.
  return url.toString().replace(/\/$/, '');
}

function redisUrl(env: NodeJS.ProcessEnv): string | undefined {
  const url = nonEmpty(env, 'REDIS_URL');
  if (url !== undefined && !/^rediss?:\/\//.test(url)) throw new ConfigError('REDIS_URL must be a redis:// or rediss:// URL');
  return url;
}

const PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

function parseTrustProxy(raw: string | undefined): false | string[] | number {
  if (raw === undefined || /^(false|0|no|off)$/i.test(raw)) return false;
  if (/^(true|yes|on|\*)$/i.test(raw)) {
    throw new ConfigError(
      'TRUST_PROXY=true would believe X-Forwarded-For from any peer, so any caller could pick the address its limits are counted under; ' +
        "give the proxies' addresses/CIDRs (e.g. 10.0.0.5,192.168.0.0/16, or loopback) or the number of proxies in front (e.g. 1)",
    );
  }
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops < 1 || hops > 10) throw new ConfigError(`TRUST_PROXY as a hop count must be between 1 and 10, got "${raw}"`);
    return hops;
  }
  const entries = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.some((e) => !PROXY_NAMES.includes(e) && !isAddressOrCidr(e))) {
    throw new ConfigError(
      `TRUST_PROXY must be a comma-separated list of proxy addresses/CIDRs (or loopback, linklocal, uniquelocal), or a hop count, got "${raw}"`,
    );
  }
  return entries;
}

function isAddressOrCidr(entry: string): boolean {
  const [address = '', bits, ...rest] = entry.split('/');
  const family = net.isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}
