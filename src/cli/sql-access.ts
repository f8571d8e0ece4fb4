import { SYSTEM } from '../audit/audit.repo.js';
import { loadConfig } from '../config/config.js';
import {
  type SqlAccessActor,
  SqlAccessRefusal,
  SqlAccessService,
  type SqlAccessView,
  sqlAccessSettings,
} from '../sql-access/sql-access.service.js';
import { organizationBySlug, withDatabase } from './commands.js';
import { CliError, print, printSecret } from './io.js';

/**
 * `sensorcloud sql-access enable|show|set-cidrs|rotate|disable --org <slug>`: the same service as
 * `/v1/sql-access`, audited as done by the server's operator. The password is printed once, alone
 * on its line of standard output (the rest goes to standard error), for scripts.
 */

const list = (value: string): string[] => value.split(/[\s,]+/).filter((v) => v !== '');

/** The service on the configured database, the organization, and the operator as the actor. */
async function withSqlAccess(
  slug: string,
  run: (service: SqlAccessService, organizationId: string, by: SqlAccessActor) => Promise<void>,
): Promise<void> {
  await withDatabase(async ({ db, kind }) => {
    const org = await organizationBySlug(db, slug);
    try {
      await run(new SqlAccessService(db, kind, sqlAccessSettings(loadConfig())), org.id, {
        audit: { ...SYSTEM, organizationId: org.id },
        userId: null,
      });
    } catch (error) {
      if (error instanceof SqlAccessRefusal) throw new CliError(error.message.replaceAll('allowed_cidrs', '--cidrs'));
      throw error;
    }
  });
}

const describe = (login: SqlAccessView): string =>
  `login ${login.username} on ${login.host}:${login.port}/${login.database}, schema ${login.schema}, from ${login.allowedCidrs.join(', ')}`;

export async function sqlAccessEnableCommand(options: { org: string; cidrs: string }): Promise<void> {
  await withSqlAccess(options.org, async (service, organizationId, by) => {
    const { login, password } = await service.enable(organizationId, list(options.cidrs), by);
    printSecret(`enabled SQL access: ${describe(login)}; its password, shown only now:`, password, 'stderr');
  });
}

export async function sqlAccessShowCommand(options: { org: string }): Promise<void> {
  await withSqlAccess(options.org, async (service, organizationId) => print(describe(await service.show(organizationId))));
}

export async function sqlAccessSetCidrsCommand(options: { org: string; cidrs: string }): Promise<void> {
  await withSqlAccess(options.org, async (service, organizationId, by) => {
    const login = await service.setAllowedCidrs(organizationId, list(options.cidrs), by);
    print(describe(login));
  });
}

export async function sqlAccessRotateCommand(options: { org: string }): Promise<void> {
  await withSqlAccess(options.org, async (service, organizationId, by) => {
    const { login, password } = await service.rotate(organizationId, by);
    printSecret(`new password of ${login.username} (the old one no longer works), shown only now:`, password, 'stderr');
  });
}

export async function sqlAccessDisableCommand(options: { org: string }): Promise<void> {
  await withSqlAccess(options.org, async (service, organizationId, by) => {
    const { dropError } = await service.disable(organizationId, by);
    print('SQL access disabled: the login can no longer connect and its sessions were ended');
    if (dropError) process.stderr.write(`the login could not be dropped (it can no longer log in): ${String(dropError)}\n`);
  });
}
