/** The input boundary's refusals (NUL in a path or parameter) on the external sign-in pages are 4xx pages, never a 500 (found by the hostile-inputs property test). */
import { expect, it } from 'vitest';
import { startTestServer } from '../support/server.js';
it('boundary refusals on the external sign-in pages are 4xx', async () => {
  const server = await startTestServer({ backend: 'pglite' });
  for (const path of ['/login/external/%00', '/login/external/callback?%00=%00'])
    expect((await server.fetch(path)).status, path).toBeLessThan(500);
  await server.stop();
});
