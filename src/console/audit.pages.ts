import { decodeCursor, parseSort } from '../api/list-query.js';
import { ACTOR_KINDS, AUDIT_ACTIONS, AUDIT_TARGET_TYPES } from '../audit/actions.js';
import { AUDIT_SORTS, type AuditFilter, listAuditEvents } from '../audit/audit.repo.js';
import { findMemberViewsByIds } from '../identity/members.repo.js';
import { findUserByEmail } from '../identity/users.repo.js';
import { type ConsoleKit, type Form, forbidden, formText } from './kit.js';

const PATH = '/console/audit';
const PAGE_SIZE = 50;
/** Every action of a resource at once: `api_key.` (the API's prefix filter). */
const RESOURCES = [...new Set(AUDIT_ACTIONS.map((action) => `${action.split('.')[0]}.`))];

/** A `datetime-local` value, read as UTC (the page says so), as RFC 3339; undefined when empty, null when not a time. */
function instant(value: string): string | undefined | null {
  if (value === '') return undefined;
  const at = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`);
  return Number.isNaN(at.getTime()) ? null : at.toISOString();
}

/**
 * The audit log for the organization's admins (`users:write`, as `/v1/audit-events`), newest
 * first: filters by action (or every action of a resource), actor (an email or an id), target and
 * time range, and cursor pagination, through the audit repository the API reads. Entries never
 * hold a secret; the page shows what the API shows, with people's emails beside their ids.
 */
export function registerAuditPages(kit: ConsoleKit): void {
  const { db } = kit.services;

  kit.page(PATH, async (caller, request, reply) => {
    if (!caller.can('users:write')) return forbidden(kit, caller, reply, 'users:write');
    const query = request.query as Form;
    const form = {
      action: formText(query.action),
      actor: formText(query.actor),
      target_type: formText(query.target_type),
      target_id: formText(query.target_id),
      from: formText(query.from),
      to: formText(query.to),
    };
    const errors: Record<string, string> = {};
    const from = instant(form.from);
    const to = instant(form.to);
    if (from === null) errors.from = 'Enter a date and time.';
    if (to === null) errors.to = 'Enter a date and time.';
    const filter: AuditFilter = {
      action: [...AUDIT_ACTIONS, ...RESOURCES].includes(form.action) ? form.action : undefined,
      target_type: (AUDIT_TARGET_TYPES as readonly string[]).includes(form.target_type) ? form.target_type : undefined,
      target_id: form.target_id || undefined,
      from: from ?? undefined,
      to: to ?? undefined,
    };
    if ((ACTOR_KINDS as readonly string[]).includes(form.actor)) filter.actor_kind = form.actor;
    else if (form.actor.includes('@')) filter.actor_id = (await findUserByEmail(db, form.actor))?.id ?? 'nobody';
    else if (form.actor !== '') filter.actor_id = form.actor;
    const cursor = formText(query.cursor);
    const page = await listAuditEvents(db, caller.organizationId, filter, parseSort('-at', AUDIT_SORTS, '-at'), {
      limit: PAGE_SIZE,
      after: cursor ? decodeCursor(cursor) : undefined,
    });
    const people = await findMemberViewsByIds(
      db,
      caller.organizationId,
      [
        ...new Set(page.items.flatMap((e) => [e.actor_kind === 'user' ? e.actor_id : null, e.target_type === 'user' ? e.target_id : null])),
      ].filter((id): id is string => id !== null),
    );
    const next = page.nextCursor && new URLSearchParams({ ...form, cursor: page.nextCursor });
    return kit.render(reply, caller, 'audit', {
      title: 'Audit log',
      entries: page.items,
      emails: Object.fromEntries(people.map((p) => [p.id, p.email])),
      form,
      errors,
      actions: AUDIT_ACTIONS,
      resources: RESOURCES,
      targetTypes: AUDIT_TARGET_TYPES,
      actorKinds: ACTOR_KINDS,
      paged: cursor !== '',
      next: next ? `${PATH}?${next}` : undefined,
      first: `${PATH}?${new URLSearchParams(form)}`,
    });
  });
}
