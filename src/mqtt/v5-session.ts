import type { Duplex } from 'node:stream';
import mqttPacket, { type IConnectPacket, type IPublishPacket, type Packet } from 'mqtt-packet';
import type { Principal } from '../auth/principal.js';
import { type DeviceIngest, type MessageRefusal, type MqttLog, readingsTopic } from './device-ingest.js';
import { PacketSizeGuard } from './packet-size.js';

/**
 * One MQTT 5 connection to the built-in broker. aedes speaks MQTT 3.1.1 only, so MQTT 5 devices
 * get this session instead: the wire format is mqtt-packet's (aedes' and MQTT.js' own codec);
 * what is here is only what a device that publishes readings needs, with the reason codes of
 * SPEC §8. There are no subscriptions (refused), no retained or will messages delivered to anyone
 * (there is no one to deliver them to), no QoS 2 (Maximum QoS 1 is announced) and no session
 * kept across connections.
 */

/** Reason codes (MQTT 5 §2.4). */
export const REASON = {
  success: 0x00,
  noSubscriptionExisted: 0x11,
  unspecifiedError: 0x80,
  malformedPacket: 0x81,
  protocolError: 0x82,
  badUserNameOrPassword: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  serverBusy: 0x89,
  serverShuttingDown: 0x8b,
  badAuthenticationMethod: 0x8c,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicNameInvalid: 0x90,
  receiveMaximumExceeded: 0x93,
  packetTooLarge: 0x95,
  payloadFormatInvalid: 0x99,
  qosNotSupported: 0x9b,
  connectionRateExceeded: 0x9f,
} as const;

/** QoS 1 messages a device may have unacknowledged at once (announced as Receive Maximum). */
const RECEIVE_MAXIMUM = 1_000;
/** A connection that sends no CONNECT within this is closed. */
const CONNECT_TIMEOUT_MS = 30_000;
/** A connection the server ended is destroyed if the peer has not closed it within this. */
export const END_GRACE_MS = 1_000;
/** The largest Maximum Packet Size MQTT 5 can announce (§3.2.2.3.6: the largest packet the protocol can carry). */
const MAX_ANNOUNCEABLE_PACKET_SIZE = 268_435_460;

/** What became of a message handed to the store: its refusal (none: stored), or why it could not be stored. */
type Stored = { refusal: MessageRefusal | undefined } | { error: unknown };

export interface SessionHost {
  ingest: DeviceIngest;
  /** The address the connection comes from (abuse back-off). */
  ip: string;
  /** A device is connected (a new session of its client id ends the previous one). */
  connected(session: V5Session): void;
  closed(session: V5Session): void;
  log: MqttLog;
}

export class V5Session {
  principal: Principal | undefined;
  /** The one topic this device may publish to (readingsTopic of its serial). */
  topic = '';
  clientId = '';
  private readonly parser = mqttPacket.parser({ protocolVersion: 5 });
  private readonly sizes: PacketSizeGuard;
  /**
   * Packets that came after CONNECT while its credentials were being checked (MQTT 5 §3.1.4: a
   * client may send before CONNACK), handled in order once it is accepted; undefined when no
   * CONNECT is being checked. The stream is paused meanwhile, so this holds at most one read's packets.
   */
  private early: Packet[] | undefined;
  private keepAliveMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  /** PUBACKs go out in the order their PUBLISHes came in (MQTT 5 §4.6), whichever commits first. */
  private acks: Promise<void> = Promise.resolve();
  private ended = false;

  constructor(
    private readonly stream: Duplex,
    private readonly host: SessionHost,
  ) {
    this.sizes = new PacketSizeGuard(host.ingest.maxPacketSize);
    this.parser.on('packet', (packet: Packet) => this.receive(packet));
    this.parser.on('error', () => this.disconnect(REASON.malformedPacket));
    stream.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      // Refused from its fixed header, before the parser buffers it (MQTT 5 §3.2.2.3.6).
      if (!this.sizes.feed(chunk)) this.disconnect(REASON.packetTooLarge);
      else this.parser.parse(chunk);
    });
    stream.on('error', () => this.end());
    stream.on('close', () => this.end());
    this.timer = setTimeout(() => this.end(), CONNECT_TIMEOUT_MS);
  }

  /** Ends the session from the server's side with a reason (revoked, shutting down, taken over); before CONNACK, without one. */
  disconnect(reasonCode: number): void {
    if (this.ended) return;
    if (this.principal) this.send({ cmd: 'disconnect', reasonCode });
    else this.stream.destroy();
    this.end();
  }

  /** Resolves once every message received so far is answered (graceful shutdown). */
  settled(): Promise<void> {
    return this.acks;
  }

  private receive(packet: Packet): void {
    if (this.ended) return;
    this.armKeepAlive();
    if (!this.principal) {
      if (this.early) this.early.push(packet);
      else if (packet.cmd === 'connect') void this.connect(packet);
      else this.end();
      return;
    }
    switch (packet.cmd) {
      case 'publish':
        this.publish(packet);
        return;
      case 'pingreq':
        this.send({ cmd: 'pingresp' });
        return;
      case 'subscribe':
        // Devices publish; nothing is ever delivered to them.
        this.send({
          cmd: 'suback',
          messageId: packet.messageId,
          granted: packet.subscriptions.map(() => REASON.notAuthorized),
        });
        return;
      case 'unsubscribe':
        this.send({
          cmd: 'unsuback',
          messageId: packet.messageId,
          granted: packet.unsubscriptions.map(() => REASON.noSubscriptionExisted),
        });
        return;
      case 'disconnect':
        this.end();
        return;
      case 'puback':
        return;
      default:
        // A second CONNECT, QoS 2 flow packets, AUTH: nothing this server announced.
        this.disconnect(REASON.protocolError);
    }
  }

  private async connect(packet: IConnectPacket): Promise<void> {
    if (packet.properties?.authenticationMethod) return this.refuse(REASON.badAuthenticationMethod);
    this.early = [];
    this.stream.pause();
    let checked: Awaited<ReturnType<DeviceIngest['authenticate']>>;
    try {
      checked = await this.host.ingest.authenticate(packet.username, packet.password, this.host.ip);
    } catch {
      return this.refuse(REASON.serverUnavailable);
    }
    if (this.ended) return;
    if ('refused' in checked) return this.refuse(REASON.connectionRateExceeded);
    if ('invalid' in checked) return this.refuse(REASON.badUserNameOrPassword);
    this.principal = checked.principal;
    this.topic = readingsTopic(checked.principal.deviceSerial!);
    this.clientId = packet.clientId || `sensorcloud-${crypto.randomUUID()}`;
    this.keepAliveMs = (packet.keepalive ?? 0) * 1000;
    this.send({
      cmd: 'connack',
      reasonCode: REASON.success,
      sessionPresent: false,
      properties: {
        maximumQoS: 1,
        receiveMaximum: RECEIVE_MAXIMUM,
        maximumPacketSize: Math.min(this.sizes.maxPacketSize, MAX_ANNOUNCEABLE_PACKET_SIZE),
        wildcardSubscriptionAvailable: false,
        subscriptionIdentifiersAvailable: false,
        sharedSubscriptionAvailable: false,
        ...(packet.clientId ? {} : { assignedClientIdentifier: this.clientId }),
      },
    } as Packet);
    this.armKeepAlive();
    this.host.connected(this);
    // What the device sent before its CONNACK, in order, as if it had come now.
    const early = this.early;
    this.early = undefined;
    for (const received of early) this.receive(received);
    if (!this.ended) this.stream.resume();
  }

  /** CONNACK with a refusal; whatever came after the CONNECT is dropped with the connection. */
  private refuse(reasonCode: number): void {
    this.early = undefined;
    this.send({ cmd: 'connack', reasonCode, sessionPresent: false });
    this.end();
  }

  private publish(packet: IPublishPacket): void {
    const principal = this.principal!;
    const { ingest } = this.host;
    const violation =
      packet.qos === 2
        ? REASON.qosNotSupported
        : // No Topic Alias Maximum was announced, so an aliased (empty) topic is an error.
          packet.topic === ''
          ? REASON.topicNameInvalid
          : packet.qos === 1 && ++this.inFlight > RECEIVE_MAXIMUM
            ? REASON.receiveMaximumExceeded
            : undefined;
    if (violation !== undefined) {
      this.disconnect(violation);
      return;
    }
    // Settled at once into a value: a later message's store may fail while an earlier one is still
    // pending (GroupCommit retries a failed group message by message), and a rejection nobody has
    // handled yet would end the process.
    const answer: Promise<Stored> = !ingest.mayPublish(this.topic, packet.topic)
      ? Promise.resolve({ refusal: { kind: 'not_authorized' } })
      : ingest
          .store(
            { organizationId: principal.organizationId, deviceId: principal.deviceId },
            principal.deviceSerial!,
            packet.payload as Buffer,
          )
          .then(
            (refusal) => ({ refusal }),
            (error: unknown) => ({ error }),
          );
    const messageId = packet.messageId;
    this.acks = this.acks.then(async () => {
      const stored = await answer;
      if ('error' in stored) {
        // Not stored and not acknowledged (DeviceIngest logged it): the device sends it again after reconnecting.
        this.disconnect(REASON.serverBusy);
        return;
      }
      const { refusal } = stored;
      if (packet.qos !== 1) return;
      this.inFlight -= 1;
      const reasonCode = !refusal ? REASON.success : refusal.kind === 'not_authorized' ? REASON.notAuthorized : REASON.payloadFormatInvalid;
      this.send({
        cmd: 'puback',
        messageId: messageId!,
        reasonCode,
        ...(refusal?.kind === 'invalid_payload' && { properties: { reasonString: refusal.detail.slice(0, 500) } }),
      } as Packet);
    });
  }

  private armKeepAlive(): void {
    clearTimeout(this.timer);
    // MQTT 5 §3.1.2.10: one and a half keep-alive periods without a packet end the connection.
    if (this.keepAliveMs > 0) this.timer = setTimeout(() => this.disconnect(REASON.keepAliveTimeout), this.keepAliveMs * 1.5);
  }

  private send(packet: Packet): void {
    if (this.ended || this.stream.destroyed) return;
    this.stream.write(mqttPacket.generate(packet, { protocolVersion: 5 }));
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.early = undefined;
    this.stream.end();
    // A peer that never closes its side would keep the connection (and a shutdown) waiting.
    if (!this.stream.destroyed) setTimeout(() => this.stream.destroy(), END_GRACE_MS).unref();
    this.host.closed(this);
  }
}
