import pino from 'pino';
import { formatAccessLine, requestSerializer } from '/work/main/src/http/logging.ts';
const sink = { write(_s: string) {} };
const logger = pino({ level: 'trace' }, sink);
const target = { time: (logger as any)[pino.symbols.timeSym], bindings: (logger as any)[pino.symbols.chindingsSym] };
const request = { id: 'f0e1d2c3-b4a5-4687-9788-a9b0c1d2e3f4', method: 'GET', url: '/v1/sensors/f0e1d2c3-b4a5-4687-9788-a9b0c1d2e3f4/readings/latest', ip: '127.0.0.1' } as any;
const N = 300_000;
for (let round = 0; round < 3; round++) {
  let t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) logger.info({ reqId: request.id, req: requestSerializer(request), res: { statusCode: 200 }, responseTime: 0.123456 + i }, 'request completed');
  const a = Number(process.hrtime.bigint() - t) / N / 1000;
  t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink.write(formatAccessLine(target, request, 200, 0.123456 + i));
  const b = Number(process.hrtime.bigint() - t) / N / 1000;
  console.log(`pino ${a.toFixed(2)} µs  formatted ${b.toFixed(2)} µs`);
}
