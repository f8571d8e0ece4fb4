/**
 * Reference: a bare Fastify JSON route, the practical ceiling of one Node process on this machine.
 * Same framework and major version as sensorcloud, default options (no logger), one GET route
 * answering a latest-reading-shaped body from memory.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
const reading = {
  data: {
    sensor_id: '00000000-0000-4000-8000-000000000000',
    timestamp: '2025-01-01T00:00:00.000Z',
    value: 21.5,
    raw_value: 21.5,
    unit: '°C',
  },
};
app.get('/v1/sensors/:id/readings/latest', async () => reading);
app.get('/healthz', async () => ({ status: 'ok' }));

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void app.close().then(() => process.exit(0)));
