import { withdrawAuthorization } from '../oauth/authorize/authorizations.js';
import { listAuthorizedApplications } from '../oauth/authorize/consents.repo.js';
import { findClientByClientId } from '../oauth/clients.repo.js';
import { type ConsoleKit, type Form, formText } from './kit.js';

const PATH = '/console/authorized-applications';

/**
 * Authorized applications inside the console: the applications the signed-in person allowed to act
 * for them in this organization, each revocable behind a confirmation. The same consent records and
 * withdrawal as the account page (`/account/authorized-applications`, which stays for people
 * outside the console) and `/v1/authorized-applications`. A person's own: no scope is needed.
 */
export function registerAuthorizedApplicationPages(kit: ConsoleKit): void {
  const { db, bearer } = kit.services;

  kit.page(PATH, async (caller, request, reply) => {
    const revoked = formText((request.query as Form).revoked);
    const client = revoked && revoked.length <= 200 ? await findClientByClientId(db, revoked) : undefined;
    return kit.render(reply, caller, 'authorized-applications', {
      title: 'Authorized applications',
      applications: await listAuthorizedApplications(db, caller.user.id, caller.organizationId),
      notice: client && client.organization_id === caller.organizationId ? `Access for ${client.name} has been revoked.` : undefined,
    });
  });

  kit.page(
    `${PATH}/revoke`,
    async (caller, request, reply) => {
      const withdrawn = await withdrawAuthorization(db, bearer, formText((request.body as Form).client_id), {
        organizationId: caller.organizationId,
        userId: caller.user.id,
        sourceAddress: caller.sourceAddress,
      });
      if (!withdrawn)
        return kit.render(
          reply,
          caller,
          'message',
          { title: 'Not found', message: 'That application is not among your authorized applications.' },
          404,
        );
      return reply.redirect(`${PATH}?revoked=${encodeURIComponent(withdrawn.client.client_id)}`, 303);
    },
    'POST',
  );
}
