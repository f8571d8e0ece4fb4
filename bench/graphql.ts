/**
 * The scenario of issue #14's GraphQL: one query for 100 devices with their sensors and each
 * sensor's latest reading, against the /v1 calls that fetch the same: `GET /v1/devices?limit=100`
 * then `GET /v1/sensors?limit=1000` (every sensor with its latest value: a superset of what the
 * query returns, so the reference is, if anything, favoured).
 */
import { BENCH } from './lib/fixtures.js';
import { type Context, type Prepared, type Scenario, runLoad } from './scenarios.js';

const QUERY =
  '{ devices(first: 100) { edges { node { id serial name sensors { id key kind unit latestReading { ts value } } } } pageInfo { hasNextPage endCursor } } }';

async function probe(ctx: Context, path: string, init: RequestInit = {}): Promise<string | undefined> {
  const response = await fetch(ctx.url + path, { ...init, headers: { authorization: `Bearer ${BENCH.apiKey}`, ...init.headers } });
  const body = await response.text();
  if (response.status !== 200 || body.includes('"errors"'))
    return `${init.method ?? 'GET'} ${path} → ${response.status} ${body.slice(0, 160)}`;
  return undefined;
}

export const graphqlScenario: Scenario = {
  id: 'graphql',
  title: '11. GraphQL: 100 devices with sensors and latest readings',
  kind: 'throughput',
  unit: 'queries/s',
  multiplier: () => 1,
  connections: (cfg) => cfg.connections,
  target: '≥ 50% of the equivalent /v1 calls (2 per query)',
  check: (sc, ref) => (ref ? sc.rate >= 0.5 * ref.rate : undefined),
  async sensorcloud(ctx): Promise<Prepared> {
    const body = JSON.stringify({ query: QUERY });
    const headers = { authorization: `Bearer ${BENCH.apiKey}`, 'content-type': 'application/json' };
    const problem = await probe(ctx, '/graphql', { method: 'POST', headers, body });
    if (problem) return { unavailable: problem };
    return (duration) =>
      runLoad({
        url: ctx.url,
        connections: ctx.cfg.connections,
        duration,
        requests: [{ method: 'POST', path: '/graphql', headers, body }],
      });
  },
  reference: {
    name: 'the same through /v1 (devices, then sensors)',
    serverPid: () => 'sensorcloud',
    perBackend: true,
    async prepare(ctx): Promise<Prepared> {
      const headers = { authorization: `Bearer ${BENCH.apiKey}`, accept: 'application/json' };
      const paths = ['/v1/devices?limit=100', '/v1/sensors?limit=1000'];
      for (const path of paths) {
        const problem = await probe(ctx, path);
        if (problem) return { unavailable: problem };
      }
      // Each connection sends the two calls in turn: one "query" is two requests.
      return async (duration) => {
        const result = await runLoad({
          url: ctx.url,
          connections: ctx.cfg.connections,
          duration,
          requests: paths.map((path) => ({ method: 'GET', path, headers })),
        });
        return { ...result, rps: result.rps / 2, ok: Math.round(result.ok / 2) };
      };
    },
  },
};
