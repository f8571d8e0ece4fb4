import { Counter } from 'prom-client';
import type { Module } from '../module.js';
import { ingestSettings, registerIngestRoutes } from './ingest.routes.js';

/** POST /v1/ingest, over the ingest pipeline every transport shares (services.ingest). */
export const ingestModule: Module = {
  name: 'ingest',
  register(app, services) {
    const stored = new Counter({
      name: 'ingest_readings_total',
      help: 'Readings stored by this node, whatever the transport (a resent reading already stored is not counted)',
      registers: [services.metrics],
    });
    services.ingest.afterCommit((batch) => stored.inc(batch.accepted));
    registerIngestRoutes(app, services, ingestSettings(services.config.env));
  },
};
