import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { type Config, loadConfig } from '../../src/config/config.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import type { Db } from '../../src/storage/database.js';
import { type BackendName, TEST_DATABASE_URL, createThrowawayDatabase, freshDataDir } from './databases.js';
import { writeFile } from './files.js';
import { captureOutput } from './process.js';

/**
 * A complete server (storage, migrations, provisioning, HTTP) on an ephemeral port of 127.0.0.1,
 * started exactly as `sensorcloud serve` starts it, for tests that talk real HTTP.
 */

/** Silent unless TEST_LOG_LEVEL asks otherwise (TEST_LOG_LEVEL=error shows what a 500 in a test was). */
export const silentLogger = (): FastifyBaseLogger =>
  pino({ level: process.env.TEST_LOG_LEVEL || 'silent' }) as unknown as FastifyBaseLogger;

export async function tempDir(prefix = 'sensorcloud-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/**
 * A data directory with an initialised embedded database in it, fast to open: migrated to the
 * latest schema unless `migrated: false` (to see the migrations run).
 */
export async function dataDirWithDatabase(options: { migrated?: boolean } = {}): Promise<string> {
  return (await freshDataDir({ migrated: options.migrated ?? true })).dir;
}

export interface TestServer {
  running: RunningServer;
  /** Base URL actually bound, e.g. http://127.0.0.1:41234 */
  url: string;
  config: Config;
  /** The server's database. */
  db: Db;
  /** The PostgreSQL database URL (postgres only). */
  databaseUrl: string | undefined;
  /** What the server printed on standard output while starting (the setup link goes there). */
  stdout: string;
  /** The one-time setup link printed at start, when the database was empty. */
  setupLink: string | undefined;
  fetch(pathname: string, init?: RequestInit): Promise<Response>;
  /** Graceful close, then removes the storage if this helper created it. */
  stop(): Promise<void>;
}

export interface TestServerOptions {
  /** Use this data directory (kept on stop). */
  dataDir?: string;
  /** Run on this PostgreSQL database (kept on stop) instead of the embedded one. */
  databaseUrl?: string;
  /**
   * Without dataDir or databaseUrl, the storage created for the server (removed on stop): a fresh
   * embedded database (the default) or a throwaway PostgreSQL database on TEST_DATABASE_URL.
   */
  backend?: BackendName;
  /** Provisioning YAML applied at start, as `serve --provision FILE` does. */
  provisioning?: string;
  /** The server's environment variables (OAuth and abuse settings and the like; config/env.ts), instead of this process's. */
  env?: Record<string, string | undefined>;
  /**
   * Bind a port chosen beforehand and make it PUBLIC_URL, so everything derived from the public URL
   * when the app is built (the OAuth issuer) is exactly the address the server answers on.
   */
  exactPublicUrl?: boolean;
  /** Anything else of Config (bodyLimit, provisionFile, publicUrl…). */
  overrides?: Partial<Config>;
  /** How long stop() lets in-flight requests run before cutting connections. */
  shutdownGraceMs?: number;
  /** The server's logger; silent by default. */
  logger?: FastifyBaseLogger;
}

/** A port free on 127.0.0.1 right now (another process may still take it before the server binds). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const own =
    options.dataDir === undefined && options.databaseUrl === undefined
      ? await serverBackend(options.backend ?? 'pglite').prepare()
      : undefined;
  const storage: Pick<Config, 'dataDir' | 'databaseUrl'> = {
    dataDir: (own?.options ?? options).dataDir,
    databaseUrl: (own?.options ?? options).databaseUrl,
  };
  let started: { running: RunningServer; config: Config };
  let stdout: string;
  try {
    const provisionFile = options.provisioning === undefined ? undefined : await writeFile('provision.yaml', options.provisioning);
    // Capture (and swallow) what startServer prints for the operator: the setup link.
    ({ result: started, stdout } = await captureOutput(() => listen(options, { ...storage, provisionFile }), ['stdout']));
  } catch (error) {
    await own?.cleanup();
    throw error;
  }
  const { running, config } = started;
  const url = running.url;
  return {
    running,
    url,
    config,
    db: running.database.db,
    databaseUrl: storage.databaseUrl,
    stdout,
    setupLink: /(https?:\/\/\S+\/setup\?token=\S+)/.exec(stdout)?.[1],
    fetch: (pathname, init) => fetch(new URL(pathname, url), init),
    stop: async () => {
      await running.close();
      await own?.cleanup();
    },
  };
}

/**
 * A server started (by `start`) before the tests of the enclosing describe block and stopped after
 * them; the object returned stands for it inside tests and hooks.
 *
 *   const server = useTestServer(() => startTestServer({ provisioning }));
 *   it('…', async () => { await server.fetch('/healthz'); });
 */
export function useTestServer(start: () => Promise<TestServer> = startTestServer): TestServer {
  let current: TestServer | undefined;
  beforeAll(async () => {
    current = await start();
  });
  afterAll(async () => {
    await current?.stop();
    current = undefined;
  });
  return new Proxy({} as TestServer, {
    get(_target, key) {
      if (!current) throw new Error('the test server is not running (use it inside a test or hook)');
      return Reflect.get(current, key);
    },
  });
}

/** startServer on 127.0.0.1, retried on another port if the one chosen beforehand was taken meanwhile. */
async function listen(options: TestServerOptions, settings: Partial<Config>): Promise<{ running: RunningServer; config: Config }> {
  for (let attempt = 0; ; attempt++) {
    const port = options.exactPublicUrl ? await freePort() : 0;
    // The variables the test gives (OAuth and abuse settings…), nothing of this process's environment.
    const config = loadConfig(options.env ?? {}, {
      port,
      host: '127.0.0.1',
      logLevel: 'silent',
      ...settings,
      ...(options.exactPublicUrl && { publicUrl: `http://127.0.0.1:${port}` }),
      ...options.overrides,
    });
    try {
      const running = await startServer(
        config,
        options.logger ?? silentLogger(),
        options.shutdownGraceMs === undefined ? {} : { shutdownGraceMs: options.shutdownGraceMs },
      );
      return { running, config };
    } catch (error) {
      if (!options.exactPublicUrl || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 3) throw error;
    }
  }
}

/**
 * Storage for a full server on each backend: the embedded database in a data directory, and (with
 * TEST_DATABASE_URL) a throwaway PostgreSQL database. The same storage can back several servers
 * in turn, for restart tests.
 */
export interface ServerStorage {
  options: TestServerOptions;
  cleanup(): Promise<void>;
}

export interface ServerBackend {
  name: BackendName;
  prepare(): Promise<ServerStorage>;
}

export const serverBackends: ServerBackend[] = [
  {
    name: 'pglite',
    prepare: async () => {
      const dataDir = await dataDirWithDatabase();
      return { options: { dataDir }, cleanup: () => fs.rm(dataDir, { recursive: true, force: true }) };
    },
  },
  ...(TEST_DATABASE_URL
    ? [
        {
          name: 'postgres' as const,
          prepare: async (): Promise<ServerStorage> => {
            const throwaway = await createThrowawayDatabase();
            return { options: { databaseUrl: throwaway.url }, cleanup: () => throwaway.drop() };
          },
        },
      ]
    : []),
];

function serverBackend(name: BackendName): ServerBackend {
  const backend = serverBackends.find((b) => b.name === name);
  if (!backend) throw new Error(`no ${name} backend for test servers (TEST_DATABASE_URL is not set)`);
  return backend;
}
