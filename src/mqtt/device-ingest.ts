import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Refusal } from '../abuse/guard.js';
import type { BearerAuthenticator } from '../auth/bearer.js';
import type { Principal } from '../auth/principal.js';
import { type ParsedBatch, parseJsonBatch, parseNdjsonBatch } from '../ingest/ingest.parse.js';
import type { IngestPipeline, IngestRefusal, IngestSource, SourcedBatch } from '../ingest/pipeline.js';
import { DEVICE_TOKEN_PREFIX } from '../inventory/device-tokens.js';
import { GroupCommit } from '../storage/group-commit.js';

/**
 * What every MQTT transport shares (the built-in broker, MQTT 3.1.1 and 5, and the shared
 * subscription on an existing broker): a device's credentials checked like any bearer credential,
 * its one topic, and its payloads read as `POST /v1/ingest` reads a device's body and stored
 * through the same ingest pipeline. Concurrent messages share a statement (group commit): a
 * fleet of single-reading publishes is not one transaction per message.
 */

/** The one topic a device publishes to (SPEC §8). */
export const readingsTopic = (serial: string): string => `devices/${serial}/readings`;

/** The serial in a readings topic, or undefined for any other topic. */
export function serialOfTopic(topic: string): string | undefined {
  const match = /^devices\/([^/]+)\/readings$/.exec(topic);
  return match?.[1];
}

/** Why a message was not stored; the transport words it (MQTT 5 reason code, 3.1.1 close or drop). */
export type MessageRefusal = { kind: 'not_authorized' } | { kind: 'invalid_payload'; detail: string };

export type Credentials = { principal: Principal } | { refused: Refusal } | { invalid: true };

/**
 * Bytes an MQTT packet may have beyond its payload (fixed header, topic, packet id, MQTT 5
 * properties): a packet larger than INGEST_MAX_BYTES plus this is refused from its fixed header,
 * before it is buffered (MQTT 5: announced as Maximum Packet Size in CONNACK).
 */
export const PACKET_OVERHEAD_BYTES = 8 * 1024;

/** What the transports log with (a Fastify/pino logger). */
export interface MqttLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

/**
 * Messages committed together at most; more wait for the next statement. One statement at a time:
 * a fleet's messages touch the same `sensor_latest` and hourly rows, so a second statement would
 * wait on the first one's row locks anyway, and bigger groups cost fewer round trips.
 */
const MESSAGE_GROUP_COMMIT = { maxBatch: 5_000, maxInFlight: 1 };

interface Message extends SourcedBatch {
  refusal?: IngestRefusal | undefined;
}

export interface MqttMetrics {
  connected: Gauge;
  connectionsRefused: Counter<'reason'>;
  received: Counter;
  refused: Counter<'reason'>;
  latency: Histogram;
}

function mqttMetrics(registry: Registry): MqttMetrics {
  const registers = [registry];
  return {
    connected: new Gauge({ name: 'mqtt_connected_devices', help: 'Devices connected to the built-in MQTT broker', registers }),
    connectionsRefused: new Counter({
      name: 'mqtt_connections_refused_total',
      help: 'MQTT connections refused at CONNECT, by reason (bad_credentials, throttled)',
      labelNames: ['reason'] as const,
      registers,
    }),
    received: new Counter({ name: 'mqtt_messages_received_total', help: 'MQTT messages received on readings topics', registers }),
    refused: new Counter({
      name: 'mqtt_messages_refused_total',
      help: 'MQTT messages stored not at all, by reason (invalid_payload, not_authorized: another topic, or an unknown serial on MQTT_URL)',
      labelNames: ['reason'] as const,
      registers,
    }),
    latency: new Histogram({
      name: 'mqtt_ingest_duration_seconds',
      help: 'From an MQTT message received to its readings committed',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
  };
}

export class DeviceIngest {
  readonly metrics: MqttMetrics;
  /** Largest MQTT packet accepted, bytes: a payload of INGEST_MAX_BYTES and its headers. */
  readonly maxPacketSize: number;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly messages: GroupCommit<Message>;
  /** Messages submitted and not yet settled, and who waits for none to be left (shutdown). */
  private storing = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly bearer: BearerAuthenticator,
    private readonly pipeline: IngestPipeline,
    registry: Registry,
    /** Largest payload, bytes (INGEST_MAX_BYTES, as for HTTP). */
    readonly maxBytes: number,
    private readonly log: MqttLog,
  ) {
    this.metrics = mqttMetrics(registry);
    this.maxPacketSize = maxBytes + PACKET_OVERHEAD_BYTES;
    this.messages = new GroupCommit(async (messages) => {
      const refusals = await this.pipeline.ingestGroup(messages);
      for (const [i, message] of messages.entries()) message.refusal = refusals[i];
    }, MESSAGE_GROUP_COMMIT);
  }

  /**
   * CONNECT: username = the device's serial, password = its device token, checked by the bearer
   * check (its cache and the abuse guard's back-off for `ip`). Only a device token of that serial
   * passes.
   */
  async authenticate(username: string | undefined, password: Buffer | undefined, ip: string): Promise<Credentials> {
    const token = password?.toString('utf8');
    let checked: Credentials = { invalid: true };
    try {
      if (token?.startsWith(DEVICE_TOKEN_PREFIX)) checked = await this.bearer.check(token, ip);
    } catch (error) {
      this.log.warn({ err: error }, 'MQTT CONNECT could not be checked');
      throw error;
    }
    const serial = 'principal' in checked ? checked.principal.deviceSerial : undefined;
    if ('principal' in checked && (checked.principal.kind !== 'device' || serial === undefined || serial !== username))
      checked = { invalid: true };
    if (!('principal' in checked)) this.metrics.connectionsRefused.inc({ reason: 'refused' in checked ? 'throttled' : 'bad_credentials' });
    return checked;
  }

  /**
   * Whether a connected device's credential still stands (cache invalidations were missed): looked
   * up again by its digest, so connections keep no plaintext token. False when it is unknown now,
   * or names another device.
   */
  async stillValid(principal: Principal): Promise<boolean> {
    const current = await this.bearer.resolveDigest(DEVICE_TOKEN_PREFIX, principal.credentialHash);
    return current?.kind === 'device' && current.deviceId === principal.deviceId && current.deviceSerial === principal.deviceSerial;
  }

  /**
   * Whether a connected device may publish to `topic`: its own readings topic only (`ownTopic`,
   * readingsTopic of its serial, worked out once per connection).
   */
  mayPublish(ownTopic: string, topic: string): boolean {
    const allowed = topic === ownTopic;
    if (!allowed) this.refusedTopic();
    return allowed;
  }

  refusedTopic(): void {
    this.metrics.received.inc();
    this.metrics.refused.inc({ reason: 'not_authorized' });
  }

  /**
   * Stores a message's readings for `source` (a device, `serial` in the log): resolves once they
   * are durable, with the refusal when the payload is one `POST /v1/ingest` would refuse (nothing
   * stored). Rejects when they could not be written (the database is away): the message is not
   * acknowledged. Either is logged here, once for every transport.
   */
  async store(source: IngestSource, serial: string, payload: Buffer): Promise<MessageRefusal | undefined> {
    const started = performance.now();
    this.metrics.received.inc();
    const parsed = this.parse(payload);
    let refusal: Extract<MessageRefusal, { kind: 'invalid_payload' }> | undefined;
    if ('detail' in parsed) refusal = { kind: 'invalid_payload', detail: parsed.detail };
    else {
      const message: Message = { source, parsed };
      this.storing += 1;
      try {
        await this.messages.submit(message);
      } catch (error) {
        this.log.warn({ err: error, device: serial }, 'MQTT readings could not be stored; not acknowledged, so they are sent again');
        throw error;
      } finally {
        if (--this.storing === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      }
      if (message.refusal) refusal = { kind: 'invalid_payload', detail: detailOf(message.refusal) };
    }
    if (refusal) {
      this.metrics.refused.inc({ reason: refusal.kind });
      this.log.warn({ device: serial, detail: refusal.detail }, 'MQTT payload refused');
    } else this.metrics.latency.observe((performance.now() - started) / 1000);
    return refusal;
  }

  /** Resolves once every message being stored is committed or failed (shutdown, before the database closes). */
  idle(): Promise<void> {
    return this.storing === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * A payload as `POST /v1/ingest` reads a device's body: `{"readings": [...]}`, an array or a
   * single reading (one line of NDJSON), else NDJSON.
   */
  private parse(payload: Buffer): ParsedBatch | { detail: string } {
    if (payload.length > this.maxBytes) return { detail: `The payload exceeds ${this.maxBytes} bytes (INGEST_MAX_BYTES).` };
    let text: string;
    try {
      text = this.decoder.decode(payload);
    } catch {
      return { detail: 'The payload is not UTF-8 text.' };
    }
    const max = this.pipeline.maxReadings;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return parseNdjsonBatch(text, 'key', max);
    }
    // A single reading object is a one-line batch (already parsed: not parsed again as NDJSON).
    const batch = Array.isArray(body) || (body !== null && typeof body === 'object' && 'readings' in body) ? body : [body];
    const json = parseJsonBatch(batch, 'key', max);
    return 'shapeError' in json ? { detail: json.shapeError } : json;
  }
}

/** A refusal in one line for a log (MQTT 3.1.1 has no way to tell the device). */
function detailOf(refusal: IngestRefusal): string {
  const first = refusal.errors[0]?.detail;
  return first ? `${refusal.message} ${first}` : refusal.message;
}
