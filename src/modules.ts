import type { Migration } from 'kysely';
import { abuseModule } from './abuse/abuse.module.js';
import { auditModule } from './audit/audit.module.js';
import { consoleModule } from './console/console.module.js';
import { alarmsModule } from './alarms/alarms.module.js';
import { apiKeysModule } from './api-keys/api-keys.module.js';
import { applicationsModule } from './applications/applications.module.js';
import { eventsModule } from './events/events.module.js';
import { externalSigninModule } from './external-signin/external-signin.module.js';
import { graphqlModule } from './graphql/graphql.module.js';
import { healthModule } from './http/health.js';
import { identityModule } from './identity/identity.module.js';
import { ingestModule } from './ingest/ingest.module.js';
import { inventoryModule } from './inventory/inventory.module.js';
import type { Module } from './module.js';
import { mqttModule } from './mqtt/mqtt.module.js';
import { notificationsModule } from './notifications/notifications.module.js';
import { oauthModule } from './oauth/oauth.module.js';
import type { SectionApplier } from './provisioning/section.js';
import { readingsModule } from './readings/readings.module.js';
import { setupModule } from './setup/setup.module.js';
import { sqlAccessModule } from './sql-access/sql-access.module.js';
import { iotconnectModule } from './vendors/iotconnect/iotconnect.module.js';
import { webhooksModule } from './webhooks/webhooks.module.js';

/**
 * Every capability of the server, once. The order is the order of registration and of the
 * provisioning sections: people before the clients bound to them and the API keys they created,
 * locations before the devices in them.
 */
export const MODULES: readonly Module[] = [
  healthModule,
  setupModule,
  identityModule,
  abuseModule,
  auditModule,
  oauthModule,
  externalSigninModule,
  apiKeysModule,
  applicationsModule,
  inventoryModule,
  eventsModule,
  webhooksModule,
  alarmsModule,
  notificationsModule,
  readingsModule,
  ingestModule,
  sqlAccessModule,
  mqttModule,
  graphqlModule,
  iotconnectModule,
  consoleModule,
];

/** The one migration set: every module's, applied in name order. */
export function allMigrations(modules: readonly Module[] = MODULES): Record<string, Migration> {
  const all: Record<string, Migration> = {};
  for (const module of modules) {
    for (const [name, migration] of Object.entries(module.migrations ?? {})) {
      if (name in all) throw new Error(`migration ${name} is declared by two modules`);
      all[name] = migration;
    }
  }
  return all;
}

export function provisioningSections(modules: readonly Module[] = MODULES): SectionApplier[] {
  return modules.flatMap((module) => module.provisioning ?? []);
}
