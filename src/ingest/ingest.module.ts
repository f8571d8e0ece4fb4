import type { Module } from '../module.js';
import { ingestSettings, registerIngestRoutes } from './ingest.routes.js';

/** POST /v1/ingest, over the ingest pipeline every transport shares (services.ingest). */
export const ingestModule: Module = {
  name: 'ingest',
  register(app, services) {
    registerIngestRoutes(app, services, ingestSettings(services.config.env));
  },
};
