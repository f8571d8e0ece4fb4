import { randomUUID } from 'node:crypto';
import type { Db } from '../storage/database.js';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import { isUuid } from '../storage/sql.js';
import type { IdentityProvider } from './external-signin.schema.js';

/**
 * Identity providers of an organization (every query of the API scoped by organization_id), and
 * the few the login pages need across organizations: the enabled ones, with their organization's
 * name, and one enabled provider by id.
 */

export const PROVIDER_SORTS: Record<string, SortField> = {
  created_at: { column: 'identity_providers.created_at', cast: 'timestamptz' },
  name: { column: 'identity_providers.name', cast: 'text' },
};

export interface ProviderFields {
  name: string;
  issuer: string;
  client_id: string;
  allowed_email_domains: string[];
  enabled: boolean;
}

export async function listProviders(db: Db, organizationId: string, sort: Sort, page: PageRequest): Promise<Page<IdentityProvider>> {
  const query = db.selectFrom('identity_providers').selectAll().where('organization_id', '=', organizationId);
  return keysetPage(await paginate(query, sort, 'identity_providers.id', page).execute(), sort, page);
}

export async function findProvider(db: Db, organizationId: string, id: string): Promise<IdentityProvider | undefined> {
  if (!isUuid(id)) return undefined;
  return db
    .selectFrom('identity_providers')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
}

export async function findProviderByName(db: Db, organizationId: string, name: string): Promise<IdentityProvider | undefined> {
  return db
    .selectFrom('identity_providers')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('name', '=', name)
    .executeTakeFirst();
}

/** `seal` encrypts the client secret bound to the new row's id (made here for that reason). */
export async function insertProvider(
  db: Db,
  organizationId: string,
  fields: ProviderFields,
  seal: (id: string) => string,
): Promise<IdentityProvider> {
  const id = randomUUID();
  return db
    .insertInto('identity_providers')
    .values({ id, organization_id: organizationId, ...fields, client_secret_sealed: seal(id) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** `sealed`: a new client secret, already sealed for this id; undefined keeps the current one. */
export async function updateProvider(
  db: Db,
  organizationId: string,
  id: string,
  fields: Partial<ProviderFields>,
  sealed?: string,
): Promise<IdentityProvider | undefined> {
  if (!isUuid(id)) return undefined;
  return db
    .updateTable('identity_providers')
    .set({ ...fields, ...(sealed !== undefined && { client_secret_sealed: sealed }), updated_at: new Date() })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function deleteProvider(db: Db, organizationId: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const result = await db
    .deleteFrom('identity_providers')
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export interface ProviderButton {
  id: string;
  name: string;
  organizationName: string;
}

/** The enabled providers the login page offers: one organization's, or (undefined) every organization's. */
export async function listEnabledProviders(db: Db, organizationId: string | undefined): Promise<ProviderButton[]> {
  let query = db
    .selectFrom('identity_providers')
    .innerJoin('organizations', 'organizations.id', 'identity_providers.organization_id')
    .select(['identity_providers.id', 'identity_providers.name', 'organizations.name as organizationName'])
    .where('identity_providers.enabled', '=', true);
  if (organizationId !== undefined) query = query.where('identity_providers.organization_id', '=', organizationId);
  return query.orderBy('organizations.name').orderBy('identity_providers.name').limit(50).execute();
}

/** An enabled provider by id, whichever organization's: the sign-in pages are not signed in yet. */
export async function findEnabledProvider(db: Db, id: string): Promise<IdentityProvider | undefined> {
  if (!isUuid(id)) return undefined;
  return db.selectFrom('identity_providers').selectAll().where('id', '=', id).where('enabled', '=', true).executeTakeFirst();
}
