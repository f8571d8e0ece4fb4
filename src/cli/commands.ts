import { loadConfig } from '../config/config.js';
import { isEmail, passwordProblem, saveMember } from '../identity/accounts.js';
import { findOrganizationBySlug } from '../identity/organizations.repo.js';
import { loadProvisioningFile } from '../provisioning/load.js';
import { applyProvisioning } from '../provisioning/provision.js';
import { provisioningContext } from '../provisioning/section.js';
import { startServer } from '../server/server.js';
import { createFirstOrganization, setupLinkIfEmpty, validateFirstOrganization } from '../setup/setup.service.js';
import { type DatabaseHandle, type Db, openDatabase } from '../storage/database.js';
import { migrateToLatest } from '../storage/migrate.js';
import type { Organization, Role } from '../storage/schema.js';
import { allMigrations, provisioningSections } from '../modules.js';
import { CliError, print, readPassword } from './io.js';

/** Opens the configured database, migrated (unless told not to), for a one-shot command. */
export async function withDatabase<T>(run: (handle: DatabaseHandle) => Promise<T>, options: { migrate?: boolean } = {}): Promise<T> {
  const config = loadConfig();
  const handle = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    if (options.migrate !== false) await migrateToLatest(handle.db, allMigrations());
    return await run(handle);
  } finally {
    await handle.close();
  }
}

/** The organization an `--org <slug>` option names, or the command fails. */
export async function organizationBySlug(db: Db, slug: string): Promise<Organization> {
  const found = await findOrganizationBySlug(db, slug);
  if (!found) throw new CliError(`no organization with slug "${slug}"`);
  return found;
}

export async function serveCommand(options: { provision?: string }): Promise<void> {
  const config = loadConfig(process.env, options.provision ? { provisionFile: options.provision } : {});
  const server = await startServer(config);
  server.app.log.info({ url: server.url, public_url: config.publicUrl, database: server.database.kind }, 'sensorcloud listening');
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      server.app.log.info({ signal }, 'shutting down: finishing in-flight requests');
      server.close().then(resolve, (error: unknown) => {
        server.app.log.error({ err: error }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

export async function migrateCommand(): Promise<void> {
  await withDatabase(
    async ({ db }) => {
      const applied = await migrateToLatest(db, allMigrations());
      print(applied.length ? `applied: ${applied.map((m) => m.migrationName).join(', ')}` : 'database is up to date');
    },
    { migrate: false },
  );
}

export async function provisionCommand(file: string): Promise<void> {
  // An invalid file is reported before the database is even opened.
  const parsed = await loadProvisioningFile(file);
  await withDatabase(async ({ db }) => {
    const summary = await applyProvisioning(db, parsed, provisioningSections(), file, provisioningContext(loadConfig()));
    const counts = Object.entries(summary.applied).map(([section, n]) => `${n} ${section}`);
    print(`provisioned ${summary.organizations} organization(s): ${counts.join(', ') || 'no members'}`);
    if (summary.notYetSupported.length) print(`validated but not yet stored by this version: ${summary.notYetSupported.join(', ')}`);
  });
}

export async function setupCommand(options: {
  orgName?: string;
  orgSlug?: string;
  email?: string;
  name?: string;
  passwordStdin?: boolean;
}): Promise<void> {
  const config = loadConfig();
  await withDatabase(async ({ db }) => {
    if (!options.orgName && !options.orgSlug && !options.email) {
      const link = await setupLinkIfEmpty(db, config.publicUrl);
      if (!link) throw new CliError('this installation already has an organization');
      print(`Open this one-time link to create the first organization:\n  ${link}`);
      return;
    }
    if (!options.orgName || !options.orgSlug || !options.email) throw new CliError('--org-name, --org-slug and --email go together', 2);
    const input = {
      organizationName: options.orgName,
      organizationSlug: options.orgSlug,
      email: options.email,
      name: options.name,
      password: await readPassword(options.passwordStdin),
    };
    const errors = Object.entries(validateFirstOrganization(input));
    if (errors.length) throw new CliError(errors.map(([field, message]) => `${field} ${message}`).join('; '), 2);
    const { organization, owner } = await createFirstOrganization(db, input);
    print(`created organization ${organization.slug} with owner ${owner.email}`);
  });
}

export async function userCreateCommand(options: {
  org: string;
  email: string;
  role: Role;
  name?: string;
  password: boolean;
  passwordStdin?: boolean;
}): Promise<void> {
  if (!isEmail(options.email)) throw new CliError(`--email: "${options.email}" is not an email address`, 2);
  await withDatabase(async ({ db }) => {
    const organization = await organizationBySlug(db, options.org);
    let password: string | undefined;
    if (options.password) {
      password = await readPassword(options.passwordStdin);
      const weak = passwordProblem(password);
      if (weak) throw new CliError(`password ${weak}`, 2);
    }
    const user = await saveMember(db, organization.id, { email: options.email, role: options.role, name: options.name, password });
    print(`${user.email} is ${options.role} of ${organization.slug} (user id ${user.id})`);
  });
}
