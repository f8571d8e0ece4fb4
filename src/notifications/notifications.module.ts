import type { Module } from '../module.js';
import * as m0014 from './migrations/0014_notifications.js';
import { registerRuleRoutes } from './rules.routes.js';

/**
 * Notifications: rules saying who is told of which alarms by email (`/v1/notification-rules`).
 */
export const notificationsModule: Module = {
  name: 'notifications',
  migrations: { '0014_notifications': m0014 },
  register(app, services) {
    registerRuleRoutes(app, services, () => {});
  },
};
