/**
 * Every action the audit log records, `<resource>.<verb>`, in one place: entries are typed by this
 * list (audit.repo.ts), and `/v1/audit-events` documents it (the `action` enum, the filter's
 * description). A capability that audits something new adds its action here.
 */
export const AUDIT_ACTIONS = [
  // API keys (sk_live_): the key itself is never recorded, only its name and scopes.
  'api_key.created',
  'api_key.rotated',
  'api_key.revoked',
  // Device tokens (sc_dev_): issued with the device, rotated, revoked with the device's deletion.
  'device_token.created',
  'device_token.rotated',
  'device_token.revoked',
  // Webhook subscriptions and their signing secrets (whsec_).
  'webhook.created',
  'webhook.updated',
  'webhook.secret_rotated',
  'webhook.deleted',
  'webhook.disabled',
  // A person's approval of an OAuth application (consent page, device page), and its withdrawal.
  'consent.granted',
  'consent.revoked',
  // People of the organization.
  'member.role_changed',
  'member.deactivated',
  'member.reactivated',
  'member.removed',
  'invitation.created',
  'invitation.revoked',
  'invitation.accepted',
  // External identity providers (their client secret is never recorded).
  'identity_provider.created',
  'identity_provider.updated',
  'identity_provider.deleted',
  // OAuth applications (/v1/applications, the CLI): the client secret is never recorded.
  'application.created',
  'application.secret_rotated',
  'application.updated',
  'application.deleted',
  // SQL access (/v1/sql-access, the CLI): the login's password is never recorded.
  'sql_access.enabled',
  'sql_access.updated',
  'sql_access.password_rotated',
  'sql_access.disabled',
  // A wrong password for a member's account (login form, password grant).
  'sign_in.failed',
  // The organization's name or readings retention period.
  'organization.updated',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Who acts: a person, an API key, an OAuth application without a person, a device, or the server itself. */
export const ACTOR_KINDS = ['user', 'api_key', 'app', 'device', 'system'] as const;

export type ActorKind = (typeof ACTOR_KINDS)[number];

/** What an entry is about: the `target_type` of every action above. */
export const AUDIT_TARGET_TYPES = [
  'api_key',
  'device',
  'webhook',
  'application',
  'user',
  'invitation',
  'identity_provider',
  'sql_access',
  'organization',
] as const;
