import { hostname } from 'node:os';
import { ingestSettings } from '../ingest/ingest.routes.js';
import type { Module } from '../module.js';

/**
 * MQTT ingest (SPEC §8): the built-in broker with MQTT_PORT (and MQTT_WS_PORT), or the shared
 * subscription on an existing broker with MQTT_URL; off when neither is set. Either way messages
 * are stored through the ingest pipeline (services.ingest), like POST /v1/ingest.
 */
export const mqttModule: Module = {
  name: 'mqtt',
  async register(app, services) {
    const env = services.config.env;
    if (env.MQTT_PORT === undefined && env.MQTT_URL === undefined) return;
    // Loaded only when MQTT is on: aedes, ws and MQTT.js would otherwise lengthen every start.
    const { DeviceIngest } = await import('./device-ingest.js');
    const ingest = new DeviceIngest(services.bearer, services.ingest, services.metrics, ingestSettings(env).maxBytes, app.log);
    if (env.MQTT_PORT !== undefined) {
      const { BuiltInBroker } = await import('./broker.js');
      const broker = new BuiltInBroker(ingest, { host: services.config.host, port: env.MQTT_PORT, wsPort: env.MQTT_WS_PORT, log: app.log });
      services.invalidations.on((invalidation) => broker.invalidated(invalidation));
      app.addHook('onReady', () => broker.start());
      app.addHook('onClose', () => broker.close());
      return;
    }
    const { SharedSubscription } = await import('./shared-subscription.js');
    const consumer = new SharedSubscription(services.db, ingest, {
      url: env.MQTT_URL!,
      clientId: env.MQTT_CLIENT_ID ?? `sensorcloud-${hostname()}-${services.config.port}`,
      connections: env.MQTT_SUBSCRIBERS,
      log: app.log,
    });
    app.addHook('onReady', () => consumer.start());
    app.addHook('onClose', () => consumer.close());
  },
};
