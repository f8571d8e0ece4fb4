import { usePageSecurityHeaders } from '../http/security-headers.js';
import type { Module } from '../module.js';
import type { App } from '../server/context.js';
import { registerSetupRoutes } from './setup.routes.js';

/** The first-run setup page, in a scope of its own with the page security headers. */
export const setupModule: Module = {
  name: 'setup',
  async register(app, services) {
    await app.register(async (pages) => {
      usePageSecurityHeaders(pages, services.config.publicUrl);
      registerSetupRoutes(pages as App, services);
    });
  },
};
