import { type Server, createServer } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Aedes, type Client } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Principal } from '../auth/principal.js';
import type { Invalidation } from '../storage/invalidations.js';
import { type DeviceIngest, type MqttLog, readingsTopic } from './device-ingest.js';
import { PacketSizeGuard } from './packet-size.js';
import { END_GRACE_MS, REASON, V5Session } from './v5-session.js';

/**
 * The built-in MQTT broker (MQTT_PORT, MQTT_WS_PORT): MQTT 3.1.1 on aedes, MQTT 5 on V5Session
 * (aedes has no MQTT 5), told apart by the protocol level of each connection's CONNECT. Both
 * check credentials, topics and payloads through DeviceIngest, so they answer alike; a device
 * whose token is revoked or rotated is disconnected on every node (cache invalidations). Every
 * connection is held to DeviceIngest.maxPacketSize from the fixed header of each packet, CONNECT
 * included, before a parser buffers it.
 */

export interface BrokerOptions {
  host: string;
  port: number;
  wsPort?: number | undefined;
  log: MqttLog;
}

/** A connected device, whichever protocol it speaks. */
interface DeviceConnection {
  /** Its credential is kept as the principal's digest only (credentialHash), never in plaintext. */
  principal: Principal;
  /** The one topic it may publish to, worked out once. */
  topic: string;
  /** Closes the connection from the server's side (MQTT 5: DISCONNECT with this reason). */
  close(reasonCode: number): void;
}

/** A connection that shows no CONNECT header within this is closed. */
const SNIFF_TIMEOUT_MS = 30_000;

export class BuiltInBroker {
  private aedes: Aedes | undefined;
  private tcp: Server | undefined;
  private http: HttpServer | undefined;
  private ws: WebSocketServer | undefined;
  private readonly connections = new Set<DeviceConnection>();
  private readonly v5 = new Map<string, V5Session>();
  /** The aedes client of each 3.1.1 connection, by its stream: its device once authenticated, and its address. */
  private readonly devices = new WeakMap<Client, DeviceConnection>();
  private readonly addresses = new WeakMap<Duplex, string>();
  /** Every connection until it closes, and those still waiting for their CONNECT: close() ends them all. */
  private readonly streams = new Set<Duplex>();
  private readonly sniffing = new Set<Duplex>();
  /** Where the broker listens (the ports actually bound: 0 picks a free one). */
  port = 0;
  wsPort: number | undefined;

  constructor(
    private readonly ingest: DeviceIngest,
    private readonly options: BrokerOptions,
  ) {}

  async start(): Promise<void> {
    const { log } = this.options;
    this.aedes = await Aedes.createBroker({
      // Clients are told apart per device: a device's client id cannot end another device's session.
      preConnect: (_client, packet, done) => {
        if (packet.clientId) packet.clientId = `${packet.username ?? ''}\u0000${packet.clientId}`;
        done(null, true);
      },
      authenticate: (client, username, password, done) => {
        const ip = this.addresses.get(client.conn as Duplex) ?? '';
        this.ingest.authenticate(username, password, ip).then(
          (checked) => {
            if ('principal' in checked) {
              this.attach(client, checked.principal);
              done(null, true);
            } else done(Object.assign(new Error('refused'), { returnCode: 'refused' in checked ? 3 : 4 }), false);
          },
          // DeviceIngest logged why.
          () => done(Object.assign(new Error('server unavailable'), { returnCode: 3 }), false),
        );
      },
      // MQTT 3.1.1 has no refusal for a PUBLISH: another topic closes the connection (SPEC §8), an
      // invalid payload is acknowledged and dropped (so the device does not resend it forever).
      authorizePublish: (client, packet, done) => {
        const device = client ? this.devices.get(client) : undefined;
        if (!device || !this.ingest.mayPublish(device.topic, packet.topic)) {
          done(new Error(`not authorized to publish to ${packet.topic}`));
          return;
        }
        const { organizationId, deviceId, deviceSerial } = device.principal;
        // A refusal was logged by DeviceIngest; a failure too, and it is not acknowledged: the
        // connection closes and the device sends the message again.
        this.ingest.store({ organizationId, deviceId }, deviceSerial!, packet.payload as Buffer).then(
          () => done(null),
          (error: unknown) => done(error as Error),
        );
      },
      authorizeSubscribe: (_client, _subscription, done) => done(null, null),
    });
    this.aedes.on('clientDisconnect', (client) => {
      const device = this.devices.get(client);
      if (device) this.forget(device);
    });

    this.tcp = createServer((socket) => this.accept(socket, socket.remoteAddress ?? ''));
    this.port = await listen(this.tcp, this.options.port, this.options.host);
    if (this.options.wsPort !== undefined) {
      this.http = createHttpServer((_request, response) => response.writeHead(426, { upgrade: 'websocket' }).end());
      this.ws = new WebSocketServer({
        server: this.http,
        handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
        // ws buffers a whole message before the MQTT stream sees it (its default: 100 MiB).
        maxPayload: this.ingest.maxPacketSize,
      });
      this.ws.on('connection', (socket, request) => this.accept(createWebSocketStream(socket), request.socket.remoteAddress ?? ''));
      this.wsPort = await listen(this.http, this.options.wsPort, this.options.host);
    }
    log.info({ port: this.port, wsPort: this.wsPort }, 'MQTT broker listening');
  }

  /** A cache invalidation: a device whose credential was revoked or rotated is disconnected; after missed messages every device is checked again. */
  invalidated(invalidation: Invalidation): void {
    if (invalidation.kind === 'credentials') {
      for (const device of this.connections)
        if (
          device.principal.credentialHash === invalidation.credentialHash ||
          (invalidation.revocationGroup !== undefined && device.principal.revocationGroup === invalidation.revocationGroup)
        )
          device.close(REASON.notAuthorized);
    } else if (invalidation.kind === 'all') {
      for (const device of this.connections)
        void this.ingest.stillValid(device.principal).then(
          (valid) => {
            if (!valid) device.close(REASON.notAuthorized);
          },
          () => {},
        );
    }
  }

  /**
   * Stops accepting, lets MQTT 5 sessions answer what they received and tells them why they are
   * closed, then closes every connection: those still waiting for a CONNECT at once, any other a
   * peer has not closed within END_GRACE_MS of being ended.
   */
  async close(): Promise<void> {
    this.ws?.close();
    const closing = [this.tcp, this.http].map((server) => server && new Promise((resolve) => server.close(resolve)));
    for (const stream of this.sniffing) stream.destroy();
    await Promise.all([...this.v5.values()].map((session) => session.settled()));
    for (const session of this.v5.values()) session.disconnect(REASON.serverShuttingDown);
    await new Promise<void>((resolve) => (this.aedes ? this.aedes.close(() => resolve()) : resolve()));
    // 3.1.1 messages being stored when their connection closed: committed before the database closes.
    await this.ingest.idle();
    await closedWithin(this.streams, END_GRACE_MS);
    for (const stream of this.streams) stream.destroy();
    for (const socket of this.ws?.clients ?? []) socket.terminate();
    await Promise.all(closing);
  }

  private attach(client: Client, principal: Principal): void {
    const device: DeviceConnection = { principal, topic: readingsTopic(principal.deviceSerial!), close: () => client.close() };
    this.devices.set(client, device);
    this.remember(device);
  }

  private remember(device: DeviceConnection): void {
    this.connections.add(device);
    this.ingest.metrics.connected.set(this.connections.size);
  }

  private forget(device: DeviceConnection): void {
    if (this.connections.delete(device)) this.ingest.metrics.connected.set(this.connections.size);
  }

  /**
   * Reads the CONNECT's protocol level, then hands the connection (bytes untouched) to aedes or to
   * an MQTT 5 session; one whose CONNECT announces more than the largest packet is destroyed then.
   */
  private accept(stream: Duplex, ip: string): void {
    let buffered = Buffer.alloc(0);
    this.streams.add(stream);
    this.sniffing.add(stream);
    const timer = setTimeout(() => stream.destroy(), SNIFF_TIMEOUT_MS);
    const onReadable = () => {
      let chunk: Buffer | null;
      // biome-ignore lint/suspicious/noAssignInExpressions: the usual read loop of a paused stream.
      while ((chunk = stream.read() as Buffer | null) !== null) buffered = Buffer.concat([buffered, chunk]);
      const level = protocolLevel(buffered);
      if (level === 'more') return;
      clearTimeout(timer);
      this.sniffing.delete(stream);
      stream.off('readable', onReadable);
      stream.off('error', onError);
      if (!new PacketSizeGuard(this.ingest.maxPacketSize).feed(buffered)) {
        stream.destroy();
        return;
      }
      stream.unshift(buffered);
      if (level === 5) this.startV5(stream, ip);
      else this.startAedes(stream, ip);
    };
    const onError = () => {
      clearTimeout(timer);
      stream.destroy();
    };
    stream.on('readable', onReadable);
    stream.on('error', onError);
    stream.once('close', () => {
      clearTimeout(timer);
      this.streams.delete(stream);
      this.sniffing.delete(stream);
    });
  }

  /**
   * MQTT 3.1.1: aedes reads the stream (on 'readable', with read()); every chunk it reads is also
   * emitted as 'data', which the size guard watches, destroying the connection in the same turn
   * as a packet announcing too many bytes arrives (aedes has no packet size limit of its own).
   * The 'data' listener is added after aedes' 'readable' one, so the stream stays in aedes' hands.
   */
  private startAedes(stream: Duplex, ip: string): void {
    this.addresses.set(stream, ip);
    this.aedes?.handle(stream);
    const sizes = new PacketSizeGuard(this.ingest.maxPacketSize);
    stream.on('data', (chunk: Buffer) => {
      if (!sizes.feed(chunk)) stream.destroy();
    });
  }

  private startV5(stream: Duplex, ip: string): void {
    let device: DeviceConnection | undefined;
    new V5Session(stream, {
      ingest: this.ingest,
      ip,
      log: this.options.log,
      connected: (s) => {
        // A device's client id is its own: a new connection with it takes the session over.
        const key = `${s.principal!.deviceId}\u0000${s.clientId}`;
        this.v5.get(key)?.disconnect(REASON.sessionTakenOver);
        this.v5.set(key, s);
        device = { principal: s.principal!, topic: s.topic, close: (reason) => s.disconnect(reason) };
        this.remember(device);
      },
      closed: (s) => {
        const key = `${s.principal?.deviceId}\u0000${s.clientId}`;
        if (this.v5.get(key) === s) this.v5.delete(key);
        if (device) this.forget(device);
      },
    });
  }
}

/**
 * The protocol level of the CONNECT at the start of `bytes` (4: MQTT 3.1.1, 5: MQTT 5), 'more'
 * until enough has arrived, or 0 when this is no CONNECT (aedes refuses it).
 */
export function protocolLevel(bytes: Buffer): number | 'more' {
  if (bytes.length === 0) return 'more';
  if (bytes[0] !== 0x10) return 0;
  let at = 1;
  for (;;) {
    if (at >= bytes.length) return 'more';
    if (at > 4) return 0;
    if ((bytes[at++]! & 0x80) === 0) break;
  }
  if (at + 2 > bytes.length) return 'more';
  const nameLength = bytes.readUInt16BE(at);
  if (nameLength > 6) return 0;
  const levelAt = at + 2 + nameLength;
  return levelAt < bytes.length ? bytes[levelAt]! : 'more';
}

/** Resolves once every stream of `streams` (each still open) has closed, or after `ms`. */
async function closedWithin(streams: Set<Duplex>, ms: number): Promise<void> {
  if (streams.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all([...streams].map((stream) => new Promise((resolve) => stream.once('close', resolve)))),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

function listen(server: Server | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
