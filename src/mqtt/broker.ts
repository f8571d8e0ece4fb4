import { type Server, createServer } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Aedes, type Client } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Principal } from '../auth/principal.js';
import type { Invalidation } from '../storage/invalidations.js';
import type { DeviceIngest } from './device-ingest.js';
import { REASON, V5Session } from './v5-session.js';

/**
 * The built-in MQTT broker (MQTT_PORT, MQTT_WS_PORT): MQTT 3.1.1 on aedes, MQTT 5 on V5Session
 * (aedes has no MQTT 5), told apart by the protocol level of each connection's CONNECT. Both
 * check credentials, topics and payloads through DeviceIngest, so they answer alike; a device
 * whose token is revoked or rotated is disconnected on every node (cache invalidations).
 */

export interface BrokerOptions {
  host: string;
  port: number;
  wsPort?: number | undefined;
  log: { info(details: object, message: string): void; warn(details: object, message: string): void };
}

/** A connected device, whichever protocol it speaks. */
interface DeviceConnection {
  principal: Principal;
  token: string;
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
              this.attach(client, checked.principal, password?.toString('utf8') ?? '');
              done(null, true);
            } else done(Object.assign(new Error('refused'), { returnCode: 'refused' in checked ? 3 : 4 }), false);
          },
          (error: unknown) => {
            log.warn({ err: error }, 'MQTT CONNECT could not be checked');
            done(Object.assign(new Error('server unavailable'), { returnCode: 3 }), false);
          },
        );
      },
      // MQTT 3.1.1 has no refusal for a PUBLISH: another topic closes the connection (SPEC §8), an
      // invalid payload is acknowledged and dropped (so the device does not resend it forever).
      authorizePublish: (client, packet, done) => {
        const device = client ? this.devices.get(client) : undefined;
        if (!device || !this.ingest.mayPublish(device.principal, packet.topic)) {
          done(new Error(`not authorized to publish to ${packet.topic}`));
          return;
        }
        const { organizationId, deviceId, deviceSerial } = device.principal;
        this.ingest.store({ organizationId, deviceId }, packet.payload as Buffer).then(
          (refusal) => {
            if (refusal?.kind === 'invalid_payload') log.warn({ device: deviceSerial, detail: refusal.detail }, 'MQTT payload refused');
            done(null);
          },
          (error: unknown) => {
            // Not acknowledged: the connection closes and the device sends it again.
            log.warn({ err: error }, 'MQTT readings could not be stored; disconnecting the device');
            done(error as Error);
          },
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
      this.ws = new WebSocketServer({ server: this.http, handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false) });
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
        void this.ingest.authenticate(device.principal.deviceSerial, Buffer.from(device.token), '').then(
          (checked) => {
            if (!('principal' in checked)) device.close(REASON.notAuthorized);
          },
          () => {},
        );
    }
  }

  /** Stops accepting, lets MQTT 5 sessions answer what they received and tells them why they are closed, then closes every connection. */
  async close(): Promise<void> {
    this.ws?.close();
    const closing = [this.tcp, this.http].map((server) => server && new Promise((resolve) => server.close(resolve)));
    await Promise.all([...this.v5.values()].map((session) => session.settled()));
    for (const session of this.v5.values()) session.disconnect(REASON.serverShuttingDown);
    await new Promise<void>((resolve) => (this.aedes ? this.aedes.close(() => resolve()) : resolve()));
    // 3.1.1 messages being stored when their connection closed: committed before the database closes.
    await this.ingest.idle();
    for (const socket of this.ws?.clients ?? []) socket.terminate();
    await Promise.all(closing);
  }

  private attach(client: Client, principal: Principal, token: string): void {
    const device: DeviceConnection = { principal, token, close: () => client.close() };
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

  /** Reads the CONNECT's protocol level, then hands the connection (bytes untouched) to aedes or to an MQTT 5 session. */
  private accept(stream: Duplex, ip: string): void {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => stream.destroy(), SNIFF_TIMEOUT_MS);
    const onReadable = () => {
      let chunk: Buffer | null;
      // biome-ignore lint/suspicious/noAssignInExpressions: the usual read loop of a paused stream.
      while ((chunk = stream.read() as Buffer | null) !== null) buffered = Buffer.concat([buffered, chunk]);
      const level = protocolLevel(buffered);
      if (level === 'more') return;
      clearTimeout(timer);
      stream.off('readable', onReadable);
      stream.off('error', onError);
      stream.unshift(buffered);
      if (level === 5) this.startV5(stream, ip);
      else {
        this.addresses.set(stream, ip);
        this.aedes?.handle(stream);
      }
    };
    const onError = () => {
      clearTimeout(timer);
      stream.destroy();
    };
    stream.on('readable', onReadable);
    stream.on('error', onError);
    stream.once('close', () => clearTimeout(timer));
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
        device = { principal: s.principal!, token: s.token, close: (reason) => s.disconnect(reason) };
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

function listen(server: Server | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
