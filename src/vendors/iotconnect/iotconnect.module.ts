import type { FastifyInstance } from 'fastify';
import { renderWrongMethodAs } from '../../http/errors.js';
import type { Module } from '../../module.js';
import { registerIoTConnectAuthRoutes } from './auth.routes.js';
import { registerIoTConnectDeviceRoutes } from './devices.routes.js';
import { IoTConnectError, sendIoTConnectError, toIoTConnectError } from './responses.js';

/**
 * The IoTConnect profile (seeds/004, SPEC §4): its sign-in and device API under `/api/`, a thin
 * adapter over the canonical grants (services.oauth) and devices. Everything under `/api/`
 * answers in IoTConnect's JSON shape, unknown paths (404) and wrong methods (405) included.
 */
export const iotconnectModule: Module = {
  name: 'iotconnect',
  async register(app, services) {
    renderWrongMethodAs(
      app,
      ['/api/'],
      (_request, reply, detail) => sendIoTConnectError(reply, new IoTConnectError(reply.statusCode, detail)),
      { notFound: true },
    );
    await app.register(
      async (api: FastifyInstance) => {
        api.setErrorHandler((error, request, reply) => sendIoTConnectError(reply, toIoTConnectError(error, request)));
        registerIoTConnectAuthRoutes(api, services.oauth);
        registerIoTConnectDeviceRoutes(api, { db: services.db, bearer: services.bearer, baseUrl: services.config.publicUrl });
      },
      { prefix: '/api' },
    );
  },
};
