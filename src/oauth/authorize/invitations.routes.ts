import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { passwordProblem } from '../../identity/accounts.js';
import {
  type InvitationWithOrganization,
  findPendingInvitationForEmail,
  invitationStatus,
  listPendingInvitationsForEmail,
} from '../../identity/invitations.repo.js';
import {
  type AnswerOutcome,
  acceptWithNewAccount,
  answerAsUser,
  declineWithoutAccount,
  findInvitationByToken,
  invitationPath,
} from '../../identity/invitations.service.js';
import { findUserByEmail, normalizeEmail } from '../../identity/users.repo.js';
import type { AppServices } from '../../server/context.js';
import type { User } from '../../storage/schema.js';
import {
  type InvitationSummary,
  accountInvitationsPage,
  errorPage,
  formExpiredPage,
  invitationAnswerPage,
  invitationDonePage,
  invitationNewAccountPage,
  invitationSignInPage,
  invitationWrongAccountPage,
  loginPage,
  pageHeaders,
} from './pages.js';
import type { BrowserSession, Sessions } from '../../web/session.js';

/**
 * Where an invited person answers: `/invitations?token=…` (the link `POST /v1/users` returns) and
 * `/account/invitations` (a signed-in person's pending invitations, answerable without the link).
 * Registered in the authorization pages' context, so they share its session cookie, CSRF tokens,
 * security headers and HTML error handler. Only the owner of the invited email answers: signed in
 * as that email, or by creating that email's account when it has none.
 */

export const ACCOUNT_INVITATIONS_PATH = '/account/invitations';

const NAME_MAX_LENGTH = 200;

type Form = Record<string, unknown>;

function str(form: Form, name: string): string | undefined {
  const value = form[name];
  return typeof value === 'string' ? value : undefined;
}

const summaryOf = (invitation: InvitationWithOrganization): InvitationSummary => ({
  organizationName: invitation.organization_name,
  role: invitation.role,
  email: invitation.email,
});

const UNAVAILABLE: Record<string, string> = {
  accepted: 'This invitation has already been accepted.',
  declined: 'This invitation was declined.',
  revoked: 'This invitation was withdrawn by the organization.',
  expired: 'This invitation has expired. Ask the organization for a new one.',
};

export function registerInvitationPages(app: FastifyInstance, services: AppServices, sessions: Sessions): void {
  const pages = new InvitationPages(services, sessions);
  const hide = { schema: { hide: true } };
  app.get('/invitations', hide, (request, reply) => pages.show(request, reply));
  app.post('/invitations', hide, (request, reply) => pages.answer(request, reply));
  app.get(ACCOUNT_INVITATIONS_PATH, hide, (request, reply) => pages.account(request, reply));
  app.post(ACCOUNT_INVITATIONS_PATH, hide, (request, reply) => pages.answerFromAccount(request, reply));
}

class InvitationPages {
  constructor(
    private readonly services: AppServices,
    private readonly sessions: Sessions,
  ) {}

  private get db() {
    return this.services.db;
  }

  private currentUser(session: BrowserSession | null): Promise<User | undefined> {
    return this.sessions.user(session);
  }

  /** The pending invitation a token names, or undefined when the link does not (or no longer) work. */
  private async pendingByToken(token: string): Promise<{ invitation?: InvitationWithOrganization; pending: boolean }> {
    const invitation = token ? await findInvitationByToken(this.db, token) : undefined;
    return { ...(invitation && { invitation }), pending: invitation !== undefined && invitationStatus(invitation) === 'pending' };
  }

  /** 404 for a link that never worked, 410 for one that did (its holder may learn that much). */
  private unavailable(reply: FastifyReply, invitation: InvitationWithOrganization | undefined) {
    if (!invitation) {
      return pageHeaders(reply)
        .code(404)
        .send(
          errorPage(
            'Invitation not found',
            'This invitation link is not valid. Check that you opened the whole link, or ask the organization for a new invitation.',
          ),
        );
    }
    return pageHeaders(reply)
      .code(410)
      .send(
        errorPage('Invitation no longer valid', UNAVAILABLE[invitationStatus(invitation)] ?? 'This invitation can no longer be answered.'),
      );
  }

  /** The page for this invitation as the browser's session stands: answer, sign in, or create the account. */
  private async render(reply: FastifyReply, session: BrowserSession, invitation: InvitationWithOrganization, token: string, status = 200) {
    const csrf = this.sessions.csrfToken(session);
    const user = await this.currentUser(session);
    if (user) {
      if (normalizeEmail(user.email) !== invitation.email)
        return pageHeaders(reply)
          .code(403)
          .send(invitationWrongAccountPage({ csrf, token, userEmail: user.email }));
      return pageHeaders(reply)
        .code(status)
        .send(invitationAnswerPage({ ...summaryOf(invitation), csrf, token }));
    }
    if (await findUserByEmail(this.db, invitation.email)) {
      return pageHeaders(reply)
        .code(status)
        .send(
          invitationSignInPage({ ...summaryOf(invitation), loginUrl: `/login?return_to=${encodeURIComponent(invitationPath(token))}` }),
        );
    }
    return pageHeaders(reply)
      .code(status)
      .send(invitationNewAccountPage({ ...summaryOf(invitation), csrf, token, name: invitation.name }));
  }

  /** The page an answer leads to. */
  private finish(request: FastifyRequest, reply: FastifyReply, invitation: InvitationWithOrganization, outcome: AnswerOutcome, user: User) {
    switch (outcome) {
      case 'accepted':
      case 'declined':
        request.log.info({ invitation_id: invitation.id, user_id: user.id }, `invitation ${outcome}`);
        return pageHeaders(reply).send(invitationDonePage(outcome, summaryOf(invitation)));
      case 'wrong_account':
        return pageHeaders(reply)
          .code(403)
          .send(
            errorPage(
              'Invitation for another account',
              'This invitation was sent to a different email address than the one you are signed in with.',
            ),
          );
      case 'gone':
        return pageHeaders(reply)
          .code(410)
          .send(errorPage('Invitation no longer valid', 'This invitation was answered, withdrawn or expired in the meantime.'));
    }
  }

  async show(request: FastifyRequest, reply: FastifyReply) {
    const token = (str(request.query as Form, 'token') ?? '').slice(0, 200);
    const { invitation, pending } = await this.pendingByToken(token);
    if (!invitation || !pending) return this.unavailable(reply, invitation);
    return this.render(reply, this.sessions.ensure(request, reply), invitation, token);
  }

  async answer(request: FastifyRequest, reply: FastifyReply) {
    const form = (request.body ?? {}) as Form;
    const session = this.sessions.read(request);
    if (!session || !this.sessions.verifyCsrf(session, form.csrf_token)) return pageHeaders(reply).code(403).send(formExpiredPage());
    const token = (str(form, 'token') ?? '').slice(0, 200);
    const decision = str(form, 'decision');
    if (decision === 'sign_out') {
      await this.sessions.signOut(session, reply);
      return pageHeaders(reply).redirect(invitationPath(token), 303);
    }
    const { invitation, pending } = await this.pendingByToken(token);
    if (!invitation || !pending) return this.unavailable(reply, invitation);
    if (decision !== 'accept' && decision !== 'decline')
      return pageHeaders(reply).code(400).send(errorPage('Invalid request', 'Choose Accept or Decline.'));

    const user = await this.currentUser(session);
    if (user) {
      const outcome = await answerAsUser(this.db, invitation, user, decision, request.ip);
      // Signed in as someone else: the page that offers to sign out.
      if (outcome === 'wrong_account') return this.render(reply, session, invitation, token);
      return this.finish(request, reply, invitation, outcome, user);
    }

    if (decision === 'decline') {
      const outcome = await declineWithoutAccount(this.db, invitation);
      if (outcome === 'sign_in') return this.render(reply, session, invitation, token, 401);
      if (outcome === 'gone') return this.unavailable(reply, (await findInvitationByToken(this.db, token)) ?? invitation);
      request.log.info({ invitation_id: invitation.id }, 'invitation declined');
      return pageHeaders(reply).send(invitationDonePage('declined', summaryOf(invitation)));
    }

    const name = (str(form, 'name') ?? '').trim();
    const password = str(form, 'password') ?? '';
    const weak = passwordProblem(password);
    const problem =
      name.length > NAME_MAX_LENGTH ? `Your name must be at most ${NAME_MAX_LENGTH} characters.` : weak && `The password ${weak}.`;
    if (problem) {
      const csrf = this.sessions.csrfToken(session);
      return pageHeaders(reply)
        .code(400)
        .send(invitationNewAccountPage({ ...summaryOf(invitation), csrf, token, name, error: problem }));
    }
    const outcome = await acceptWithNewAccount(this.db, invitation, { name: name || null, password }, request.ip);
    if (outcome.kind === 'account_exists') return this.render(reply, session, invitation, token, 409);
    if (outcome.kind === 'gone') return this.unavailable(reply, (await findInvitationByToken(this.db, token)) ?? invitation);
    await this.sessions.signIn(session, reply, outcome.user.id);
    request.log.info({ invitation_id: invitation.id, user_id: outcome.user.id }, 'invitation accepted with a new account');
    return pageHeaders(reply).send(invitationDonePage('accepted', summaryOf(invitation)));
  }

  /** The login page, with every other way to sign in the login page offers. */
  private async signInFirst(reply: FastifyReply, csrf: string, notice?: string) {
    const otherOptions = await this.services.oauth.signInOptions.for({ returnTo: ACCOUNT_INVITATIONS_PATH, organizationId: undefined });
    return pageHeaders(reply).send(loginPage({ csrf, returnTo: ACCOUNT_INVITATIONS_PATH, notice, otherOptions }));
  }

  async account(request: FastifyRequest, reply: FastifyReply) {
    const session = this.sessions.ensure(request, reply);
    const csrf = this.sessions.csrfToken(session);
    const user = await this.currentUser(session);
    if (!user) return this.signInFirst(reply, csrf);
    const invitations = await listPendingInvitationsForEmail(this.db, normalizeEmail(user.email));
    return pageHeaders(reply).send(
      accountInvitationsPage({
        csrf,
        userEmail: user.email,
        invitations: invitations.map((i) => ({
          id: i.id,
          organizationName: i.organization_name,
          role: i.role,
          createdAt: i.created_at,
          expiresAt: i.expires_at,
        })),
      }),
    );
  }

  async answerFromAccount(request: FastifyRequest, reply: FastifyReply) {
    const form = (request.body ?? {}) as Form;
    const session = this.sessions.read(request);
    if (!session || !this.sessions.verifyCsrf(session, form.csrf_token)) return pageHeaders(reply).code(403).send(formExpiredPage());
    const csrf = this.sessions.csrfToken(session);
    const user = await this.currentUser(session);
    if (!user) return this.signInFirst(reply, csrf, 'Your session has expired. Sign in again to continue.');
    const invitation = await findPendingInvitationForEmail(this.db, str(form, 'invitation_id') ?? '', normalizeEmail(user.email));
    if (!invitation) {
      return pageHeaders(reply)
        .code(404)
        .send(
          errorPage(
            'Not found',
            'That invitation is not among your pending invitations: it may have been answered, withdrawn, or have expired.',
          ),
        );
    }
    const decision = str(form, 'decision');
    if (decision !== 'accept' && decision !== 'decline')
      return pageHeaders(reply).code(400).send(errorPage('Invalid request', 'Choose Accept or Decline.'));
    return this.finish(request, reply, invitation, await answerAsUser(this.db, invitation, user, decision, request.ip), user);
  }
}
