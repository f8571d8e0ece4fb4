import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/principal.js';
import { HttpProblem } from '../http/problem.js';
import { type Scope, roleScopes } from '../identity/scopes.js';
import { activeOrganizationsOf } from '../identity/users.repo.js';
import type { Db } from '../storage/database.js';
import type { Organization, Role, User } from '../storage/schema.js';
import type { BrowserSession, Sessions } from '../web/session.js';

/**
 * Who is using the console: the signed-in person (the login page's session), the organization
 * they are looking at and the scopes their role holds there. Console pages act through the same
 * services as `/v1`, with a `browser_session` principal carrying exactly the role's scopes, so a
 * page can never do more than the person's role allows through the API.
 */
export interface ConsoleCaller {
  session: BrowserSession;
  csrf: string;
  user: User;
  organization: Organization;
  /** `organization.id`: with `principal` and `sourceAddress`, the caller as the services take an API caller. */
  organizationId: string;
  organizations: { id: string; name: string }[];
  role: Role;
  principal: Principal;
  /** What the audit log records as the source. */
  sourceAddress: string;
  can(scope: Scope): boolean;
}

/** The organization a person with several memberships looks at: this cookie, checked against their memberships on every request. */
export const ORGANIZATION_COOKIE = 'sc_console_org';

/** The caller, or undefined when nobody is signed in (the page then sends the browser to /login); 403 for a person without an organization. */
export async function consoleCaller(
  db: Db,
  sessions: Sessions,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<ConsoleCaller | undefined> {
  const session = sessions.ensure(request, reply);
  const user = await sessions.user(session);
  if (!user) return undefined;
  const organizations = await activeOrganizationsOf(db, user.id);
  // Signed in but nowhere a member: a page saying so (sending them to the login page would loop back here).
  if (organizations.length === 0)
    throw new HttpProblem({
      status: 403,
      detail: 'Your account is not an active member of any organization. Ask an organization admin for an invitation.',
    });
  const wanted = request.cookies[ORGANIZATION_COOKIE];
  const organization = organizations.find((o) => o.id === wanted) ?? organizations[0]!;
  const { role } = organization;
  const scopes = roleScopes(role);
  return {
    session,
    csrf: sessions.csrfToken(session),
    user,
    organization,
    organizationId: organization.id,
    organizations: organizations.map((o) => ({ id: o.id, name: o.name })),
    role,
    sourceAddress: request.ip,
    can: (scope) => scopes.has(scope),
    principal: {
      kind: 'browser_session',
      organizationId: organization.id,
      userId: user.id,
      clientId: null,
      scopes,
      credentialHash: '',
      revocationGroup: '',
      expiresAt: null,
    },
  };
}
