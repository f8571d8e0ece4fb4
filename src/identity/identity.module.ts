import { registerGroupRoutes } from './groups.routes.js';
import { registerInvitationRoutes } from './invitations.routes.js';
import { registerMeRoutes } from './me.routes.js';
import { registerUserRoutes } from './users.routes.js';
import type { Module } from '../module.js';
import { groupsSection, membersSection } from './identity.provision.js';
import * as m0001 from './migrations/0001_foundation.js';
import * as m0008 from './migrations/0008_invitations.js';
import * as m0009 from './migrations/0009_browser_sessions.js';

/** Organizations, people, memberships, groups, invitations and browser sessions. */
export const identityModule: Module = {
  name: 'identity',
  migrations: { '0001_foundation': m0001, '0008_invitations': m0008, '0009_browser_sessions': m0009 },
  provisioning: [membersSection, groupsSection],
  register(app, services) {
    registerMeRoutes(app, services);
    registerUserRoutes(app, services);
    registerInvitationRoutes(app, services);
    registerGroupRoutes(app, services);
  },
};
