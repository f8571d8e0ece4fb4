/**
 * The reference of the MQTT scenario: a bare aedes broker (the library the built-in broker's
 * MQTT 3.1.1 side runs on) that accepts every device and acknowledges QoS 1 as soon as it has the
 * message, storing nothing. MQTT on MQTT_PORT; /healthz on PORT for the harness.
 */
import http from 'node:http';
import net from 'node:net';
import { Aedes } from 'aedes';

const broker = await Aedes.createBroker({ authenticate: (_client, _username, _password, done) => done(null, true) });
net.createServer(broker.handle).listen(Number(process.env.MQTT_PORT), '127.0.0.1');
http.createServer((_request, response) => response.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');
