import type { BearerAuthenticator } from '../auth/bearer.js';
import type { AuditEntry } from '../audit/audit.repo.js';
import type { AuditAction } from '../audit/actions.js';
import { auditedBy } from '../audit/actor.js';
import type { Principal } from '../auth/principal.js';
import { recordAuditEvent } from '../audit/audit.repo.js';
import { type Scope, clientCeiling, isScopeToken } from '../identity/scopes.js';
import type { ClientAuthenticator } from '../oauth/client-auth.js';
import { type ClientDraft, type ClientIssue, type ClientPolicy, clientIssues } from '../oauth/client-rules.js';
import {
  type ClientFields,
  type ClientView,
  clientFieldsOf,
  deleteClient,
  findClient,
  findClientByClientId,
  forgetCachedClients,
  saveClient,
} from '../oauth/clients.repo.js';
import type { GrantType, TokenFormat, UserAuthMode } from '../oauth/grant-types.js';
import { hashPassword } from '../security/passwords.js';
import { generateToken } from '../security/tokens.js';
import type { Db } from '../storage/database.js';

/**
 * OAuth applications (clients) of an organization: the one way a client is registered outside
 * the provisioning file — by `/v1/applications` (policy `organization`) and by `sensorcloud client
 * create` (policy `operator`) — and changed, given a new secret or deleted through the API. Every
 * change is written in one transaction with its audit entry (never a secret), through
 * `saveClient`, which drops cached client rows on every node when it commits.
 *
 * - A confidential client's secret is generated (`sc_cs_` + 256 random bits), returned to the
 *   caller once and stored only as argon2id (security/passwords.ts, like provisioned secrets).
 * - A rotated secret stops working at once: the client row's cache is dropped and the new hash no
 *   longer matches what client authentication remembered (oauth/client-auth.ts).
 * - Disabling or deleting an application drops its cached bearer tokens on every node
 *   (`bearer.revoked({ clientPk })`); deletion removes its grants, tokens, codes and consents.
 * - A client managed by the provisioning file can be disabled, enabled and deleted here, not
 *   otherwise changed (the file would set it back at its next application); the IoTConnect
 *   sign-in's own client cannot be changed at all.
 */

export const CLIENT_SECRET_PREFIX = 'sc_cs_';
/** Generated client_ids: public, so shorter than a secret (128 random bits). */
export const CLIENT_ID_PREFIX = 'app_';
const MIN_SECRET_LENGTH = 16;

/** Why a registration or change was refused: 403 (scopes beyond the caller's), 409 (a conflict), 422 (issues). */
export class ApplicationRefusal extends Error {
  constructor(
    readonly status: 403 | 409 | 422,
    detail: string,
    readonly issues: ClientIssue[] = [],
  ) {
    super(detail);
  }
}

/** `redirect_uris[0]: must not contain a fragment` */
export const describeIssue = (issue: ClientIssue): string =>
  `${issue.path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i > 0 ? '.' : ''}${part}`)).join('')}: ${issue.message}`;

function refuseIssues(issues: ClientIssue[]): void {
  if (issues.length > 0) throw new ApplicationRefusal(422, issues.map(describeIssue).join('; '), issues);
}

export interface NewApplication {
  /** Chosen by an operator; generated (`app_…`) otherwise. */
  clientId?: string | undefined;
  name: string;
  public: boolean;
  grantTypes: readonly string[];
  scopes: readonly string[];
  redirectUris: readonly string[];
  privacyPolicyUrl: string | null;
  tokenFormat: TokenFormat;
  accessTokenTtl: number;
  refreshTokenTtl: number | null;
  /** A secret the operator chose (CLI `--secret-stdin`); one is generated otherwise. */
  secret?: string | undefined;
  boundUserId?: string | null | undefined;
  userAuth?: UserAuthMode | undefined;
  resourceServer?: boolean | undefined;
}

/** Who registers or changes an application, and under which rules. */
export interface Registrar {
  organizationId: string;
  policy: ClientPolicy;
  /** The person doing it (recorded as the creator), if a person does. */
  userId: string | null;
  /** Organization, actor and address of the audit entries (audit/actor.ts `auditedBy`). */
  audit: Pick<AuditEntry, 'organizationId' | 'actor' | 'sourceAddress'>;
  /** The credential's scopes: an application is never given a scope they lack. Undefined: no limit (the CLI). */
  heldScopes?: ReadonlySet<Scope> | undefined;
}

/** An organization's admin acting through the API or the console: the organization's rules, within the credential's scopes. */
export const organizationRegistrar = (caller: { principal: Principal; organizationId: string; sourceAddress: string }): Registrar => ({
  organizationId: caller.organizationId,
  policy: 'organization',
  userId: caller.principal.userId,
  audit: auditedBy(caller),
  heldScopes: caller.principal.scopes,
});

/** Lengths of a registration's fields: /v1/applications' request schema and the console's form. */
export const APPLICATION_LIMITS = {
  name: 100,
  redirectUris: 20,
  /** A redirect URI or the privacy policy's address. */
  url: 2000,
} as const;

/** Token lifetimes (seconds) an application may be given. */
export const ACCESS_TOKEN_TTL_BOUNDS = { minimum: 60, maximum: 365 * 86_400 } as const;
export const REFRESH_TOKEN_TTL_BOUNDS = { minimum: 60, maximum: 10 * 365 * 86_400 } as const;

/** What an application registered without naming its grant types may use. */
export const DEFAULT_GRANT_TYPES: readonly GrantType[] = ['authorization_code', 'refresh_token'];

const draftOf = (fields: ClientFields, secret?: string): ClientDraft => ({
  client_id: fields.clientId,
  client_secret: secret,
  public: fields.public,
  redirect_uris: fields.redirectUris,
  grant_types: fields.grantTypes,
  scopes: fields.scopes,
  token_format: fields.tokenFormat,
  privacy_policy_url: fields.privacyPolicyUrl,
  bound_user: fields.boundUserId,
  user_auth: fields.userAuth,
});

/**
 * A credential registers, changes and takes the secret of applications within its own scopes only
 * (aliases expanded), so a narrow key holding `applications:write` cannot mint or take over a wider
 * application. Disabling and deleting, which only take power away, are not limited.
 */
function checkHeldScopes(scopes: readonly string[], by: Registrar): void {
  const held = by.heldScopes;
  if (!held) return;
  const beyond = [...clientCeiling(scopes.filter(isScopeToken))].filter((scope) => !held.has(scope));
  if (beyond.length > 0)
    throw new ApplicationRefusal(
      403,
      `The credential used for this request does not hold ${beyond.join(', ')}; it can only manage applications within its own scopes.`,
    );
}

const audit = (db: Db, by: Registrar, action: AuditAction, client: { id: string }, details: Record<string, unknown>) =>
  recordAuditEvent(db, { ...by.audit, action, target: { type: 'application', id: client.id }, details });

/**
 * Registers an application: validated under `by.policy`, its secret (confidential clients)
 * generated unless given, hashed with argon2id, and returned here once.
 */
export async function createApplication(
  db: Db,
  input: NewApplication,
  by: Registrar,
): Promise<{ client: ClientView; secret: string | undefined }> {
  const fields: ClientFields = {
    clientId: input.clientId ?? generateToken(CLIENT_ID_PREFIX, 16),
    name: input.name.trim(),
    public: input.public,
    grantTypes: [...new Set(input.grantTypes)] as GrantType[],
    scopes: [...new Set(input.scopes)],
    redirectUris: [...new Set(input.redirectUris)],
    privacyPolicyUrl: input.privacyPolicyUrl,
    accessTokenTtl: input.accessTokenTtl,
    refreshTokenTtl: input.refreshTokenTtl,
    tokenFormat: input.tokenFormat,
    boundUserId: input.boundUserId ?? null,
    userAuth: input.userAuth ?? 'password',
    resourceServer: input.resourceServer ?? false,
    managedBy: null,
    createdBy: by.userId,
  };
  const issues = clientIssues(draftOf(fields, input.secret), by.policy);
  if (fields.name === '') issues.unshift({ path: ['name'], message: 'must not be empty' });
  if (input.secret !== undefined && input.secret.length < MIN_SECRET_LENGTH)
    issues.push({ path: ['client_secret'], message: `must be at least ${MIN_SECRET_LENGTH} characters` });
  refuseIssues(issues);
  checkHeldScopes(fields.scopes, by);

  const secret = input.public ? undefined : (input.secret ?? generateToken(CLIENT_SECRET_PREFIX));
  const secretHash = secret === undefined ? null : await hashPassword(secret);
  const client = await db.transaction().execute(async (tx) => {
    if (await findClientByClientId(tx, fields.clientId))
      throw new ApplicationRefusal(409, `client_id "${fields.clientId}" is already registered.`);
    const { client: saved } = await saveClient(tx, by.organizationId, { ...fields, secretHash });
    await audit(tx, by, 'application.created', saved, {
      client_id: saved.client_id,
      name: saved.name,
      public: saved.public,
      grant_types: saved.grant_types,
      scopes: saved.scopes,
      redirect_uris: saved.redirect_uris,
    });
    return (await findClient(tx, by.organizationId, saved.id)) as ClientView;
  });
  return { client, secret };
}

/** What `/v1/applications/{id}` may change (PATCH and PUT), in the API's words. */
export interface ApplicationChanges {
  name?: string | undefined;
  redirect_uris?: string[] | undefined;
  scopes?: string[] | undefined;
  privacy_policy_url?: string | null | undefined;
  grant_types?: string[] | undefined;
  token_format?: TokenFormat | undefined;
  access_token_ttl?: number | undefined;
  refresh_token_ttl?: number | null | undefined;
  enabled?: boolean | undefined;
}

/** The change applied to the stored registration, and the names of the fields it really changes. */
function merge(client: ClientView, changes: ApplicationChanges): { fields: ClientFields & { enabled: boolean }; changed: string[] } {
  const current = { ...clientFieldsOf(client), enabled: client.enabled };
  const unique = (list: readonly string[] | undefined) => list && [...new Set(list)];
  const fields = {
    ...current,
    ...(changes.name !== undefined && { name: changes.name.trim() }),
    ...(changes.redirect_uris !== undefined && { redirectUris: unique(changes.redirect_uris) }),
    ...(changes.scopes !== undefined && { scopes: unique(changes.scopes) }),
    ...(changes.privacy_policy_url !== undefined && { privacyPolicyUrl: changes.privacy_policy_url }),
    ...(changes.grant_types !== undefined && { grantTypes: unique(changes.grant_types) as GrantType[] }),
    ...(changes.token_format !== undefined && { tokenFormat: changes.token_format }),
    ...(changes.access_token_ttl !== undefined && { accessTokenTtl: changes.access_token_ttl }),
    ...(changes.refresh_token_ttl !== undefined && { refreshTokenTtl: changes.refresh_token_ttl }),
    ...(changes.enabled !== undefined && { enabled: changes.enabled }),
  } as ClientFields & { enabled: boolean };
  const names: Record<string, keyof ApplicationChanges> = {
    name: 'name',
    redirectUris: 'redirect_uris',
    scopes: 'scopes',
    privacyPolicyUrl: 'privacy_policy_url',
    grantTypes: 'grant_types',
    tokenFormat: 'token_format',
    accessTokenTtl: 'access_token_ttl',
    refreshTokenTtl: 'refresh_token_ttl',
    enabled: 'enabled',
  };
  const changed = Object.entries(names)
    .filter(([key]) => JSON.stringify(fields[key as keyof typeof fields]) !== JSON.stringify(current[key as keyof typeof current]))
    .map(([, name]) => name);
  return { fields, changed };
}

/** Refuses a change to a registration someone else owns (see the module comment). */
function checkOwnership(client: ClientView, changed: readonly string[]): void {
  if (client.managed_by === 'iotconnect' && changed.length > 0)
    throw new ApplicationRefusal(409, "This is the IoTConnect sign-in's own client, managed by the server: it cannot be changed.");
  const owned = changed.filter((name) => name !== 'enabled');
  if (client.managed_by === 'provisioning' && owned.length > 0)
    throw new ApplicationRefusal(
      409,
      `This application is managed by the provisioning file, which sets ${owned.join(', ')} again each time it is applied: change it there. Here it can only be enabled, disabled or deleted.`,
    );
}

/** The caches an application change must clear on this node, beyond what commit announcements do. */
export interface ApplicationCaches {
  bearer: Pick<BearerAuthenticator, 'revoked' | 'evict'>;
  clientAuth: Pick<ClientAuthenticator, 'forget'>;
}

export class ApplicationService {
  constructor(
    private readonly db: Db,
    private readonly caches: ApplicationCaches,
  ) {}

  create(input: NewApplication, by: Registrar): Promise<{ client: ClientView; secret: string | undefined }> {
    return createApplication(this.db, input, by);
  }

  /** Changes an application; undefined when the organization has no application with that id. */
  async update(id: string, changes: ApplicationChanges, by: Registrar): Promise<ClientView | undefined> {
    let disabled = false;
    const updated = await this.db.transaction().execute(async (tx) => {
      const client = await findClient(tx, by.organizationId, id, { lock: true });
      if (!client) return undefined;
      const { fields, changed } = merge(client, changes);
      checkOwnership(client, changed);
      if (changed.length === 0) return client;
      // Only what this change brings is judged: a registration an operator made under wider rules
      // (an intranet http redirect URI) can still be renamed.
      const before = new Set(clientIssues(draftOf(clientFieldsOf(client)), by.policy).map(describeIssue));
      const issues = clientIssues(draftOf(fields), by.policy).filter((issue) => !before.has(describeIssue(issue)));
      if (fields.name === '') issues.unshift({ path: ['name'], message: 'must not be empty' });
      refuseIssues(issues);
      if (changed.some((name) => name !== 'enabled')) checkHeldScopes(fields.scopes, by);
      const { client: saved } = await saveClient(tx, by.organizationId, fields);
      disabled = client.enabled && !saved.enabled;
      if (disabled) await this.caches.bearer.revoked({ clientPk: saved.id }, tx);
      await audit(tx, by, 'application.updated', saved, {
        client_id: saved.client_id,
        changed,
        ...(changed.includes('enabled') && { enabled: saved.enabled }),
      });
      return (await findClient(tx, by.organizationId, id)) as ClientView;
    });
    if (updated) this.forget(updated.id, disabled);
    return updated;
  }

  /** A new secret for a confidential application, returned here once; the old one stops working now. */
  async rotateSecret(id: string, by: Registrar): Promise<{ client: ClientView; secret: string } | undefined> {
    const existing = await findClient(this.db, by.organizationId, id);
    if (!existing) return undefined;
    checkOwnership(existing, ['client_secret']);
    checkHeldScopes(existing.scopes, by);
    if (existing.public) throw new ApplicationRefusal(409, 'A public application has no secret: it authenticates with PKCE alone.');
    const secret = generateToken(CLIENT_SECRET_PREFIX);
    const secretHash = await hashPassword(secret);
    const client = await this.db.transaction().execute(async (tx) => {
      const locked = await findClient(tx, by.organizationId, id, { lock: true });
      if (!locked) return undefined;
      const { client: saved } = await saveClient(tx, by.organizationId, { ...clientFieldsOf(locked), secretHash });
      await audit(tx, by, 'application.secret_rotated', saved, { client_id: saved.client_id });
      return (await findClient(tx, by.organizationId, id)) as ClientView;
    });
    if (!client) return undefined;
    this.forget(client.id, false);
    return { client, secret };
  }

  /** Deletes an application with its grants, tokens, codes and consents; false when there is none. */
  async remove(id: string, by: Registrar): Promise<boolean> {
    const removed = await this.db.transaction().execute(async (tx) => {
      const client = await findClient(tx, by.organizationId, id, { lock: true });
      if (!client) return false;
      if (client.managed_by === 'iotconnect')
        throw new ApplicationRefusal(409, "This is the IoTConnect sign-in's own client, managed by the server: it cannot be deleted.");
      if (!(await deleteClient(tx, by.organizationId, id))) return false;
      await this.caches.bearer.revoked({ clientPk: client.id }, tx);
      await audit(tx, by, 'application.deleted', client, {
        client_id: client.client_id,
        name: client.name,
        ...(client.managed_by === 'provisioning' && { provisioned: true }),
      });
      return true;
    });
    if (removed) this.forget(id, true);
    return removed;
  }

  /**
   * After the commit, on this node: the client row, its remembered secret and (when its tokens
   * stopped working) its cached bearer tokens, so the very next request sees the change. The
   * commit's announcements do the same on every node; this closes the gap until they arrive here.
   */
  private forget(clientPk: string, tokens: boolean): void {
    forgetCachedClients();
    this.caches.clientAuth.forget(clientPk);
    if (tokens) this.caches.bearer.evict({ clientPk });
  }
}
