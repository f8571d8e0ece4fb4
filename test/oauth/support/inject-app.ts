import { type Config, loadConfig } from '../../../src/config/config.js';
import { parseProvisioning } from '../../../src/provisioning/load.js';
import { applyProvisioning } from '../../../src/provisioning/provision.js';
import { buildApp } from '../../../src/server/app.js';
import type { App } from '../../../src/server/context.js';
import { type DatabaseHandle, openDatabase } from '../../../src/storage/database.js';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { silentLogger } from '../../support/server.js';
import { provisioningYaml } from './oauth-server.js';
import { allMigrations, provisioningSections } from '../../../src/modules.js';

/** The whole app on an in-memory, provisioned database, for `inject` (no socket), with env overrides while building. */
export async function injectApp(
  env: Record<string, string> = {},
  overrides: Partial<Config> = {},
): Promise<{ app: App; handle: DatabaseHandle; close(): Promise<void> }> {
  const handle = await openDatabase({});
  await migrateToLatest(handle.db, allMigrations());
  await applyProvisioning(handle.db, parseProvisioning(provisioningYaml(), 'inject.yaml'), provisioningSections());
  const config = loadConfig(env, {
    port: 0,
    logLevel: 'silent',
    dataDir: undefined,
    databaseUrl: undefined,
    publicUrl: 'http://127.0.0.1:1',
    ...overrides,
  });
  const app = await buildApp({ config, db: handle.db, databaseKind: 'embedded' }, { logger: silentLogger() });
  await app.ready();
  return {
    app,
    handle,
    close: async () => {
      await app.close();
      await handle.close();
    },
  };
}
