import mqtt, { type MqttClient } from 'mqtt';
import type { IPublishPacket } from 'mqtt-packet';
import { devicesWithSerial } from '../inventory/devices.repo.js';
import type { IngestSource } from '../ingest/pipeline.js';
import type { Db } from '../storage/database.js';
import { type DeviceIngest, type MqttLog, serialOfTopic } from './device-ingest.js';

/**
 * MQTT_URL: readings from an existing MQTT 5 broker, which authenticates the devices and keeps
 * each to its own topic (docs/mqtt.md). Every node joins the shared subscription
 * `$share/sensorcloud/devices/+/readings`, so the broker hands each message to one node. A QoS 1
 * message is acknowledged to the broker only once its readings are durable; one that could not be
 * stored is not acknowledged and the connection is restarted, so the broker delivers it again
 * (persistent session). MQTT.js handles one incoming message at a time per connection until it is
 * acknowledged, so a node holds several connections (MQTT_SUBSCRIBERS) to keep several messages
 * in flight, and their writes share commits.
 */

export const SHARED_SUBSCRIPTION = '$share/sensorcloud/devices/+/readings';

/** How long a serial's device is remembered (like every cache here: a second). */
const DIRECTORY_TTL_MS = 1000;
const DIRECTORY_MAX = 50_000;
/** The broker keeps a node's session (and the messages it has not acknowledged) this long across restarts. */
const SESSION_EXPIRY_SECONDS = 3600;

export interface SharedSubscriptionOptions {
  url: string;
  /** Prefix of this node's client ids: stable across restarts, so the broker resumes the sessions. */
  clientId: string;
  connections: number;
  log: MqttLog;
}

export class SharedSubscription {
  private readonly clients: MqttClient[] = [];
  private readonly directory = new Map<string, { source: IngestSource | undefined; until: number }>();

  constructor(
    private readonly db: Db,
    private readonly ingest: DeviceIngest,
    private readonly options: SharedSubscriptionOptions,
  ) {}

  async start(): Promise<void> {
    const { url, clientId, connections, log } = this.options;
    for (let i = 0; i < connections; i += 1) {
      const client = mqtt.connect(url, {
        protocolVersion: 5,
        clientId: `${clientId}-${i}`,
        clean: false,
        properties: { sessionExpiryInterval: SESSION_EXPIRY_SECONDS },
        reconnectPeriod: 1000,
      });
      client.handleMessage = (packet, done) => {
        this.receive(packet).then(
          () => done(),
          (error: unknown) => {
            // DeviceIngest logged it; reconnecting makes the broker deliver it again.
            done(error as Error);
            client.reconnect();
          },
        );
      };
      client.on('connect', (connack) => {
        // A resumed session keeps its subscription; a new one subscribes.
        if (!connack.sessionPresent)
          client.subscribe(SHARED_SUBSCRIPTION, { qos: 1 }, (error) => {
            if (error) log.warn({ err: error }, 'MQTT shared subscription refused');
          });
      });
      client.on('error', (error) => log.warn({ err: error.message }, 'MQTT broker connection failed'));
      this.clients.push(client);
    }
    log.info({ url: redacted(url), connections }, 'consuming MQTT readings through the shared subscription');
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.endAsync()));
    await this.ingest.idle();
  }

  private async receive(packet: IPublishPacket): Promise<void> {
    const serial = serialOfTopic(packet.topic);
    const source = serial === undefined ? undefined : await this.deviceOf(serial);
    if (!source) {
      this.ingest.refusedTopic();
      this.options.log.warn({ topic: packet.topic }, 'MQTT message for no known device (or a serial several organizations use) dropped');
      return;
    }
    // A refused payload is logged by DeviceIngest, and acknowledged: the broker must not deliver it again.
    await this.ingest.store(source, serial!, packet.payload as Buffer);
  }

  /** The device a topic's serial names: undefined when none does, or several organizations use it. */
  private async deviceOf(serial: string): Promise<IngestSource | undefined> {
    const now = Date.now();
    const known = this.directory.get(serial);
    if (known && known.until > now) return known.source;
    const found = await devicesWithSerial(this.db, serial);
    const source = found.length === 1 ? { organizationId: found[0]!.organization_id, deviceId: found[0]!.id } : undefined;
    if (this.directory.size >= DIRECTORY_MAX) this.directory.clear();
    this.directory.set(serial, { source, until: now + DIRECTORY_TTL_MS });
    return source;
  }
}

/** A broker URL for the log, without its password. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'an invalid URL';
  }
}
