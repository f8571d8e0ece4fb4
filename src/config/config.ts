import net from 'node:net';
import path from 'node:path';

import { ConfigError, type Environment, readEnvironment } from './env.js';

export { ConfigError };

/**
 * Everything the server reads from its environment, read and checked once at start
 * (`config/env.ts` declares every variable). The values every part of the server uses are
 * fields; `env` holds all of them, typed, for the modules that take their own settings from it
 * (OAuth, abuse protection, ingest).
 */
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
  /** A streaming replica of `databaseUrl`, for the heavy reads that may lag (storage/read-replica.ts). */
  databaseReplicaUrl: string | undefined;
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
  /** Every variable, checked and defaulted. */
  env: Environment;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const e = overrides.env ?? readEnvironment(env);
  if (e.MQTT_URL !== undefined && e.MQTT_PORT !== undefined)
    throw new ConfigError('MQTT_PORT (the built-in broker) and MQTT_URL (an existing broker) exclude each other: set one');
  if (e.MQTT_WS_PORT !== undefined && e.MQTT_PORT === undefined) throw new ConfigError('MQTT_WS_PORT needs MQTT_PORT');
  const databaseUrl = Object.hasOwn(overrides, 'databaseUrl') ? overrides.databaseUrl : e.DATABASE_URL;
  const databaseReplicaUrl = Object.hasOwn(overrides, 'databaseReplicaUrl') ? overrides.databaseReplicaUrl : e.DATABASE_REPLICA_URL;
  if (databaseReplicaUrl !== undefined && databaseUrl === undefined)
    throw new ConfigError('DATABASE_REPLICA_URL needs DATABASE_URL: it is a replica of that PostgreSQL (the embedded database has none)');
  const port = overrides.port ?? e.PORT;
  const host = overrides.host ?? e.HOST;
  // An IPv6 address (HOST=::) goes in brackets, or the default URL would not parse.
  const urlHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    port,
    host,
    dataDir: Object.hasOwn(overrides, 'dataDir') ? overrides.dataDir && path.resolve(overrides.dataDir) : path.resolve(e.DATA_DIR),
    databaseUrl,
    databaseReplicaUrl,
    publicUrl: normalizePublicUrl(overrides.publicUrl ?? e.PUBLIC_URL ?? `http://${urlHost}:${port}`),
    logLevel: overrides.logLevel ?? e.LOG_LEVEL,
    provisionFile: overrides.provisionFile ?? e.SENSORCLOUD_PROVISION,
    bodyLimit: overrides.bodyLimit ?? e.BODY_LIMIT,
    trustProxy: overrides.trustProxy ?? parseTrustProxy(e.TRUST_PROXY),
    redisUrl: Object.hasOwn(overrides, 'redisUrl') ? overrides.redisUrl : e.REDIS_URL,
    env: e,
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
