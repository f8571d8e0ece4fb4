import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpProblem } from '../../http/problem.js';
import { UNAVAILABLE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../../storage/availability.js';
import { type SafeHtml, html, page } from '../../web/html.js';
import { PASSWORD_MIN_LENGTH } from '../../identity/accounts.js';
import type { Scope } from '../../identity/scopes.js';
import type { Role } from '../../storage/schema.js';
import { type ConsentEvaluation, SCOPE_LABELS } from './consent.js';
import type { AuthorizedApplication } from './consents.repo.js';
import type { SignInOption } from './sign-in-options.js';

/**
 * The HTML of the login, consent, device, invitation and account pages. Plain forms, no
 * JavaScript. The automation contract (SPEC §3): the login form has `email`, `password` and one
 * submit button; the consent form shows the application name, privacy policy link and each scope,
 * and has submit buttons `decision=allow` and `decision=deny`.
 */

/** Headers of every page and redirect here: never cached, never framed. */
export function pageHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .header('x-frame-options', 'DENY')
    .type('text/html; charset=utf-8');
}

const brand = html`<p class="brand">sensorcloud</p>`;
const hidden = (name: string, value: string | undefined) =>
  value === undefined ? '' : html`<input type="hidden" name="${name}" value="${value}">`;

export interface LoginView {
  csrf: string;
  returnTo: string;
  /** "to continue to <application>" */
  applicationName?: string | undefined;
  email?: string | undefined;
  error?: string | undefined;
  notice?: string | undefined;
  /** Other ways to sign in (sign-in-options.ts), shown as links beside the form, never inside it. */
  otherOptions?: readonly SignInOption[] | undefined;
}

export function loginPage(view: LoginView): string {
  return page(
    'Sign in',
    html`${brand}<h1>Sign in</h1>
${view.applicationName ? html`<p class="hint">to continue to <strong>${view.applicationName}</strong></p>` : ''}
${view.notice ? html`<p class="notice" role="status">${view.notice}</p>` : ''}
${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
<form method="post" action="/login">
${hidden('csrf_token', view.csrf)}${hidden('return_to', view.returnTo)}
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required autofocus value="${view.email ?? ''}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
${
  view.otherOptions?.length
    ? html`<div class="other-options"><p class="hint">or</p>${view.otherOptions.map(
        (o) => html`<a class="button secondary" href="${o.href}" data-sign-in-option>${o.label}</a>`,
      )}</div>`
    : ''
}`,
  );
}

export interface ConsentView {
  /** Where the decision is posted: the path the request arrived on. */
  action: string;
  csrf: string;
  /** Hidden inputs carrying the request (authorization parameters, or the device user code). */
  carry: Record<string, string | undefined>;
  applicationName: string;
  clientId: string;
  privacyPolicyUrl: string | null;
  organizationName: string;
  userEmail: string;
  evaluation: ConsentEvaluation;
  /** Where the browser goes afterwards (authorization code flow), shown so people can check it. */
  redirectOrigin?: string | undefined;
  /** The device flow shows the code the user is approving. */
  userCode?: string | undefined;
  /** For "use another account": where to come back after signing out. */
  returnTo: string;
}

function scopeList(scopes: readonly Scope[], missing: ReadonlySet<Scope>): SafeHtml {
  return html`<ul class="scopes">${scopes.map(
    (s) =>
      html`<li class="${missing.has(s) ? 'missing' : ''}" data-scope="${s}">${SCOPE_LABELS[s] ?? s}${missing.has(s) ? html` <strong>(your role does not allow this)</strong>` : ''} <code>${s}</code></li>`,
  )}</ul>`;
}

function refusal(view: ConsentView): SafeHtml {
  const e = view.evaluation;
  switch (e.reason) {
    case 'not_member':
      return html`<p class="error" role="alert">Your account is not a member of <strong>${view.organizationName}</strong>, the organization this application belongs to, so you cannot give it access. Sign in with another account or cancel.</p>`;
    case 'role_lacks_scopes':
      return html`<p class="error" role="alert">You cannot approve this request: your role in ${view.organizationName} (<strong>${e.role}</strong>) does not include ${e.missing.map((s, i) => html`${i > 0 ? ', ' : ''}<code>${s}</code>`)}. Only a user whose role holds every requested permission can approve it; ask an administrator, or cancel.</p>`;
    case 'nothing_grantable':
      return html`<p class="error" role="alert">Your role in ${view.organizationName} (<strong>${e.role}</strong>) holds none of the permissions this application asks for.</p>`;
    default:
      return html``;
  }
}

export function consentPage(view: ConsentView): string {
  const e = view.evaluation;
  const initial = (view.applicationName.trim()[0] ?? '?').toUpperCase();
  return page(
    `Authorize ${view.applicationName}`,
    html`${brand}<div class="app"><div class="badge" aria-hidden="true">${initial}</div><div>
<h1>${view.applicationName}</h1><div class="hint">wants to access your <strong>${view.organizationName}</strong> account</div></div></div>
${view.userCode ? html`<p>Confirm this code matches the one shown on your device:</p><p class="code" id="user-code">${view.userCode}</p>` : ''}
${e.canApprove ? html`<p>If you allow it, <strong>${view.applicationName}</strong> will be able to:</p>` : refusal(view)}
${scopeList(e.shown, new Set(e.missing))}
<p class="hint">${
      view.privacyPolicyUrl
        ? html`Read how ${view.applicationName} handles your data in its <a href="${view.privacyPolicyUrl}" rel="noopener noreferrer" target="_blank" id="privacy-policy">privacy policy</a>.`
        : html`${view.applicationName} has not published a privacy policy (<span id="privacy-policy">none provided</span>).`
    }
${view.redirectOrigin ? html` You will be returned to <code>${view.redirectOrigin}</code>.` : ''}
You can withdraw access at any time under <a href="/account/authorized-applications">Authorized applications</a>.</p>
<form method="post" action="${view.action}">
${hidden('csrf_token', view.csrf)}${Object.entries(view.carry).map(([name, value]) => hidden(name, value))}
<div class="actions">
${e.canApprove ? html`<button type="submit" name="decision" value="allow">Allow</button>` : ''}
<button type="submit" name="decision" value="deny" class="secondary">${e.canApprove ? 'Deny' : 'Cancel (deny)'}</button>
</div>
</form>
${whoAmI(view.userEmail, view.csrf, view.returnTo, 'Use another account')}`,
  );
}

function whoAmI(email: string, csrf: string, returnTo: string, label: string): SafeHtml {
  return html`<div class="who"><span>Signed in as <strong>${email}</strong></span>
<form method="post" action="/logout">${hidden('csrf_token', csrf)}${hidden('return_to', returnTo)}<button type="submit" class="link">${label}</button></form></div>`;
}

export function errorPage(title: string, message: string): string {
  return page(
    title,
    html`${brand}<h1>${title}</h1><p class="error" role="alert">${message}</p>
<p class="hint">If you followed a link from an application, go back to it and try again, or contact its developer.</p>`,
  );
}

/**
 * The error handler of every server-rendered page family (authorize pages, external sign-in):
 * 503 with Retry-After while the database is away; a 4xx raised anywhere, the input boundary's
 * problems included, as that status; anything else a logged 500. Never a stack or a JSON body.
 */
export function sendPageError(error: Error & { statusCode?: number }, request: FastifyRequest, reply: FastifyReply, what: string) {
  pageHeaders(reply);
  if (isDatabaseUnavailable(error)) {
    request.log.warn({ err: error }, 'database unavailable');
    return reply
      .code(503)
      .header('retry-after', String(UNAVAILABLE_RETRY_AFTER_SECONDS))
      .send(errorPage('Temporarily unavailable', 'The service cannot reach its database right now. Please try again in a few seconds.'));
  }
  const raised = error instanceof HttpProblem ? error.status : error.statusCode;
  const status = raised && raised >= 400 && raised < 500 ? raised : 500;
  if (status === 500) request.log.error({ err: error }, `${what} failed`);
  return reply
    .code(status)
    .send(
      status === 500
        ? errorPage('Something went wrong', 'An unexpected error occurred; it has been logged. Please try again.')
        : errorPage('Invalid request', error.message),
    );
}

/** A form posted without this browser's valid CSRF token (403). */
export function formExpiredPage(): string {
  return errorPage(
    'Form expired',
    'This form was not submitted from a page of this site, or it has expired (the security token is missing or invalid). Go back, reload the page and try again.',
  );
}

export interface DeviceEntryView {
  csrf: string;
  userEmail: string;
  userCode?: string | undefined;
  error?: string | undefined;
}

/** RFC 8628 §3.3: the page where the user types the code their device shows. */
export function deviceEntryPage(view: DeviceEntryView): string {
  return page(
    'Connect a device',
    html`${brand}<h1>Connect a device</h1>
<p class="hint">Enter the code shown on your device or command-line tool.</p>
${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
<form method="get" action="/device">
<label for="user_code">Code</label>
<input id="user_code" name="user_code" class="code-input" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" required placeholder="XXXX-XXXX" maxlength="32" value="${view.userCode ?? ''}">
<button type="submit">Continue</button>
</form>
${whoAmI(view.userEmail, view.csrf, '/device', 'Use another account')}`,
  );
}

export function deviceDonePage(approved: boolean, applicationName: string): string {
  return approved
    ? page(
        'Device connected',
        html`${brand}<h1>Device connected</h1><p class="ok" role="status"><strong>${applicationName}</strong> now has access. You can close this window and return to your device.</p>`,
      )
    : page(
        'Access denied',
        html`${brand}<h1>Access denied</h1><p class="notice" role="status"><strong>${applicationName}</strong> was not given access. You can close this window.</p>`,
      );
}

export interface AuthorizedApplicationsView {
  csrf: string;
  userEmail: string;
  applications: AuthorizedApplication[];
  notice?: string | undefined;
}

export function authorizedApplicationsPage(view: AuthorizedApplicationsView): string {
  return page(
    'Authorized applications',
    html`${brand}<h1>Authorized applications</h1>
<p class="hint">Applications you have allowed to access your data. Revoking access signs the application out at once: its tokens stop working and it must ask again.</p>
${view.notice ? html`<p class="ok" role="status">${view.notice}</p>` : ''}
${
  view.applications.length === 0
    ? html`<p id="no-applications">You have not authorized any applications.</p>`
    : html`<table><thead><tr><th>Application</th><th>Access</th><th>Since</th><th></th></tr></thead><tbody>
${view.applications.map(
  (
    a,
  ) => html`<tr data-client-id="${a.clientId}"><td><strong>${a.name}</strong><br><span class="hint">${a.organizationName}</span>${a.privacyPolicyUrl ? html`<br><a href="${a.privacyPolicyUrl}" rel="noopener noreferrer">Privacy policy</a>` : ''}</td>
<td>${a.scopes.map((s) => html`<div>${SCOPE_LABELS[s as Scope] ?? s} <code>${s}</code></div>`)}</td>
<td class="when">${a.createdAt.toISOString().slice(0, 10)}</td>
<td><form method="post" action="/account/authorized-applications/revoke">${hidden('csrf_token', view.csrf)}${hidden('client_id', a.clientId)}${hidden('organization_id', a.organizationId)}
<button type="submit" class="danger">Revoke</button></form></td></tr>`,
)}</tbody></table>`
}
${whoAmI(view.userEmail, view.csrf, '/account/authorized-applications', 'Sign out')}`,
    { wide: true },
  );
}

// ---- invitations --------------------------------------------------------------------------------

const ROLE_DESCRIPTIONS: Record<Role, string> = {
  owner: 'every permission, including managing owners',
  admin: 'every permission',
  member: 'reads everything; records readings, alarms and calibrations',
  viewer: 'reads everything',
};

export interface InvitationSummary {
  organizationName: string;
  role: Role;
  /** The invited email (only ever shown to someone holding the link or signed in as that email). */
  email: string;
}

function invitationIntro(view: InvitationSummary): SafeHtml {
  return html`${brand}<h1>Join ${view.organizationName}</h1>
<p>You are invited to join <strong id="organization">${view.organizationName}</strong> as <strong id="role">${view.role}</strong> <span class="hint">(${ROLE_DESCRIPTIONS[view.role]})</span>.</p>`;
}

/** The invited email has an account and its owner is not signed in: sign in to answer. */
export function invitationSignInPage(view: InvitationSummary & { loginUrl: string }): string {
  return page(
    'Invitation',
    html`${invitationIntro(view)}
<p>This invitation is for <strong>${view.email}</strong>. Sign in with that account to accept or decline it.</p>
<p><a href="${view.loginUrl}" id="sign-in">Sign in to continue</a></p>`,
  );
}

export interface NewAccountView extends InvitationSummary {
  csrf: string;
  token: string;
  name: string | null;
  error?: string | undefined;
}

/** The invited email has no account: create it (and join), or decline. */
export function invitationNewAccountPage(view: NewAccountView): string {
  return page(
    'Invitation',
    html`${invitationIntro(view)}
<p class="hint">Create your sensorcloud account to accept.</p>
${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
<form method="post" action="/invitations">
${hidden('csrf_token', view.csrf)}${hidden('token', view.token)}
<label for="email">Email</label>
<input id="email" type="email" autocomplete="username" value="${view.email}" readonly>
<label for="name">Your name</label>
<input id="name" name="name" autocomplete="name" maxlength="200" value="${view.name ?? ''}">
<label for="password">Choose a password</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="${PASSWORD_MIN_LENGTH}" maxlength="1024" required>
<p class="hint">At least ${PASSWORD_MIN_LENGTH} characters.</p>
<div class="actions">
<button type="submit" name="decision" value="accept">Create account and join</button>
<button type="submit" name="decision" value="decline" class="secondary" formnovalidate>Decline</button>
</div>
</form>`,
  );
}

/** Signed in as the invited email. */
export function invitationAnswerPage(view: InvitationSummary & { csrf: string; token: string }): string {
  return page(
    'Invitation',
    html`${invitationIntro(view)}
<form method="post" action="/invitations">
${hidden('csrf_token', view.csrf)}${hidden('token', view.token)}
<div class="actions">
<button type="submit" name="decision" value="accept">Accept</button>
<button type="submit" name="decision" value="decline" class="secondary">Decline</button>
</div>
</form>
${invitationSignOut(view.email, view.csrf, view.token, 'Use another account')}`,
  );
}

/** Signed in as someone else: nothing of the invitation is shown to them. */
export function invitationWrongAccountPage(view: { csrf: string; token: string; userEmail: string }): string {
  return page(
    'Invitation',
    html`${brand}<h1>Invitation for another account</h1>
<p class="error" role="alert">This invitation was sent to a different email address than the one you are signed in with. Sign out, then sign in with the invited address (or create its account) to answer it.</p>
${invitationSignOut(view.userEmail, view.csrf, view.token, 'Sign out')}`,
  );
}

/** Signs out and comes back to the same invitation (whose page then offers sign-in or a new account). */
function invitationSignOut(email: string, csrf: string, token: string, label: string): SafeHtml {
  return html`<div class="who"><span>Signed in as <strong>${email}</strong></span>
<form method="post" action="/invitations">${hidden('csrf_token', csrf)}${hidden('token', token)}<button type="submit" name="decision" value="sign_out" class="link">${label}</button></form></div>`;
}

export function invitationDonePage(outcome: 'accepted' | 'declined', view: { organizationName: string; role: Role }): string {
  return outcome === 'accepted'
    ? page(
        'Invitation accepted',
        html`${brand}<h1>Welcome to ${view.organizationName}</h1><p class="ok" role="status">You are now a member of <strong>${view.organizationName}</strong> as <strong>${view.role}</strong>.</p>
<p class="hint">Applications of ${view.organizationName} can now ask for access to your account there. <a href="/account/invitations">Your invitations</a> · <a href="/account/authorized-applications">Authorized applications</a></p>`,
      )
    : page(
        'Invitation declined',
        html`${brand}<h1>Invitation declined</h1><p class="notice" role="status">You declined the invitation to join <strong>${view.organizationName}</strong>. Nothing of your account was shared with it.</p>`,
      );
}

export interface PendingInvitation {
  id: string;
  organizationName: string;
  role: Role;
  createdAt: Date;
  expiresAt: Date;
}

/** A signed-in person's pending invitations, answerable without the link. */
export function accountInvitationsPage(view: { csrf: string; userEmail: string; invitations: PendingInvitation[] }): string {
  return page(
    'Invitations',
    html`${brand}<h1>Invitations</h1>
<p class="hint">Organizations that invited ${view.userEmail}. An organization sees nothing of your account unless you accept.</p>
${
  view.invitations.length === 0
    ? html`<p id="no-invitations">You have no pending invitations.</p>`
    : html`<table><thead><tr><th>Organization</th><th>Role</th><th>Expires</th><th></th></tr></thead><tbody>
${view.invitations.map(
  (
    i,
  ) => html`<tr data-invitation-id="${i.id}"><td><strong>${i.organizationName}</strong><br><span class="hint">invited ${i.createdAt.toISOString().slice(0, 10)}</span></td>
<td>${i.role}<br><span class="hint">${ROLE_DESCRIPTIONS[i.role]}</span></td>
<td class="when">${i.expiresAt.toISOString().slice(0, 10)}</td>
<td><form method="post" action="/account/invitations">${hidden('csrf_token', view.csrf)}${hidden('invitation_id', i.id)}
<div class="actions"><button type="submit" name="decision" value="accept">Accept</button><button type="submit" name="decision" value="decline" class="secondary">Decline</button></div></form></td></tr>`,
)}</tbody></table>`
}
${whoAmI(view.userEmail, view.csrf, '/account/invitations', 'Sign out')}`,
    { wide: true },
  );
}
