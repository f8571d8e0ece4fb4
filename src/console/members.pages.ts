import type { FastifyReply } from 'fastify';
import { absoluteUrl } from '../api/links.js';
import { parseSort } from '../api/list-query.js';
import { auditedBy } from '../audit/actor.js';
import { HttpProblem } from '../http/problem.js';
import { isEmail } from '../identity/accounts.js';
import { INVITATION_SORTS, listInvitations } from '../identity/invitations.repo.js';
import { invitationPath, invite } from '../identity/invitations.service.js';
import { MEMBER_SORTS, type MemberView, findMemberView, listMemberViews } from '../identity/members.repo.js';
import { checkOwnerChange, changeMemberRole, removeFromOrganization } from '../identity/members.service.js';
import { ROLES, isRole } from '../identity/scopes.js';
import { memberStatus } from '../identity/users.routes.js';
import type { Db } from '../storage/database.js';
import type { ConsoleCaller } from './console-caller.js';
import { type ConsoleKit, type Form, forbidden, formText } from './kit.js';

const PATH = '/console/members';

/**
 * Members and roles, for the organization's admins (`users:write`, as `/v1/users`): the people with
 * their role and status, a role change and a removal (behind a confirmation) per person, the
 * pending invitations and an invitation form whose accept link is shown once. Each change goes
 * through the services of the API (members.service.ts, invitations.service.ts): the owner rules,
 * the audit entry, the end of the person's cached credentials.
 */
export function registerMemberPages(kit: ConsoleKit): void {
  const { db, bearer, config } = kit.services;

  const show = async (
    caller: ConsoleCaller,
    reply: FastifyReply,
    extra: {
      notice?: string;
      error?: string;
      errors?: Record<string, string>;
      form?: Form;
      invited?: { email: string; link: string };
    } = {},
    status = 200,
  ) => {
    const organizationId = caller.organizationId;
    const [members, invitations] = await Promise.all([
      listMemberViews(db, organizationId, {}, parseSort('email', MEMBER_SORTS, 'email'), { limit: 500, after: undefined }),
      listInvitations(db, organizationId, { status: 'pending' }, parseSort('-created_at', INVITATION_SORTS, '-created_at'), {
        limit: 200,
        after: undefined,
      }),
    ]);
    return kit.render(
      reply,
      caller,
      'members',
      {
        title: 'Members and roles',
        members: members.items.map((m) => ({ ...m, status: memberStatus(m) })),
        invitations: invitations.items,
        roles: ROLES,
        errors: extra.errors ?? {},
        form: { email: '', role: 'member', name: '', ...extra.form },
        notice: extra.notice,
        error: extra.error,
        invited: extra.invited,
      },
      status,
    );
  };

  /** A change to one member in one transaction; a refusal of the rules (last owner, owners only) is shown on the page. */
  const change = async (
    caller: ConsoleCaller,
    reply: FastifyReply,
    id: string,
    run: (tx: Db, target: MemberView) => Promise<void>,
    done: string,
  ) => {
    try {
      const found = await db.transaction().execute(async (tx) => {
        const target = await findMemberView(tx, caller.organizationId, id);
        if (target) await run(tx, target);
        return target !== undefined;
      });
      if (!found) return kit.render(reply, caller, 'message', { title: 'Not found', message: 'That person is not a member.' }, 404);
    } catch (error) {
      if (error instanceof HttpProblem && error.status < 500) return show(caller, reply, { error: error.message }, error.status);
      throw error;
    }
    return reply.redirect(`${PATH}?done=${done}`, 303);
  };

  const NOTICES: Record<string, string> = {
    role: 'Role changed. Their access follows the new role from their next request.',
    removed: 'Removed from the organization. Their credentials here stopped working.',
  };

  kit.page(PATH, async (caller, request, reply) => {
    if (!caller.can('users:write')) return forbidden(kit, caller, reply, 'users:write');
    return show(caller, reply, { notice: NOTICES[formText((request.query as Form).done)] });
  });

  kit.page(
    `${PATH}/:id/role`,
    async (caller, request, reply) => {
      if (!caller.can('users:write')) return forbidden(kit, caller, reply, 'users:write');
      const role = formText((request.body as Form).role);
      if (!isRole(role)) return show(caller, reply, { error: 'Choose a role.' }, 400);
      return change(
        caller,
        reply,
        (request.params as { id: string }).id,
        (tx, target) => changeMemberRole(tx, bearer, caller, target, role),
        'role',
      );
    },
    'POST',
  );

  kit.page(
    `${PATH}/:id/remove`,
    async (caller, request, reply) => {
      if (!caller.can('users:write')) return forbidden(kit, caller, reply, 'users:write');
      return change(
        caller,
        reply,
        (request.params as { id: string }).id,
        (tx, target) => removeFromOrganization(tx, bearer, caller, target),
        'removed',
      );
    },
    'POST',
  );

  kit.page(
    `${PATH}/invite`,
    async (caller, request, reply) => {
      if (!caller.can('users:write')) return forbidden(kit, caller, reply, 'users:write');
      const body = request.body as Form;
      const form = { email: formText(body.email), role: formText(body.role), name: formText(body.name) };
      const errors: Record<string, string> = {};
      if (!isEmail(form.email)) errors.email = 'Enter an email address.';
      if (!isRole(form.role)) errors.role = 'Choose a role.';
      if (form.name.length > 200) errors.name = 'At most 200 characters.';
      if (Object.keys(errors).length > 0 || !isRole(form.role)) return show(caller, reply, { errors, form }, 400);
      try {
        await checkOwnerChange(db, caller.principal, undefined, form.role);
        const { token } = await invite(
          db,
          caller.organizationId,
          { email: form.email, role: form.role, name: form.name || null, invitedBy: caller.user.id },
          auditedBy(caller),
        );
        reply.header('cache-control', 'no-store');
        return show(caller, reply, { invited: { email: form.email, link: absoluteUrl(config.publicUrl, invitationPath(token)) } }, 201);
      } catch (error) {
        // 403: only an owner may invite an owner; 409: already a member or invited.
        if (error instanceof HttpProblem && error.status < 500)
          return show(caller, reply, { errors: { [error.status === 403 ? 'role' : 'email']: error.message }, form }, error.status);
        throw error;
      }
    },
    'POST',
  );
}
