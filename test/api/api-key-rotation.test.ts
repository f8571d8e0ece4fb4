import { describe, expect, it } from 'vitest';
import { rotateApiKeyNow } from '../../src/api-keys/api-keys.service.js';
import { SYSTEM } from '../../src/audit/audit.repo.js';
import type { CredentialMatch } from '../../src/auth/bearer.js';
import { backends, useDatabase } from '../support/databases.js';
import { createOrg, ownerPrincipal } from './support.js';

/**
 * Rotating an API key drops the old key from the bearer cache in the service, as revoking does
 * (revokeApiKeyNow), so every caller of the rotation (the /v1 route, the console, the CLI) gets it.
 */
describe.each(backends)('API key rotation on $name', (backend) => {
  const database = useDatabase(backend);

  it('evicts the rotated key from the bearer cache, after the change is committed', async () => {
    const org = await createOrg(database.db, 'rotate');
    const key = await database.db
      .selectFrom('api_keys')
      .select(['id', 'key_hash'])
      .where('organization_id', '=', org.id)
      .executeTakeFirstOrThrow();
    const principal = ownerPrincipal(org);
    const evicted: { match: CredentialMatch; hashThen: string }[] = [];
    const bearer = {
      async revoked(match: CredentialMatch) {
        // What the database holds when the eviction happens: the new secret, committed.
        const row = await database.db.selectFrom('api_keys').select('key_hash').where('id', '=', key.id).executeTakeFirstOrThrow();
        evicted.push({ match, hashThen: row.key_hash });
      },
    };
    const rotated = await rotateApiKeyNow(database.db, bearer, principal, key.id, SYSTEM);
    expect(rotated?.key).toMatch(/^sk_live_/);
    expect(evicted).toHaveLength(1);
    expect(evicted[0]!.match).toEqual({ revocationGroup: key.id });
    expect(evicted[0]!.hashThen).not.toBe(key.key_hash);

    // No such key: nothing rotated, nothing evicted.
    expect(await rotateApiKeyNow(database.db, bearer, principal, '00000000-0000-4000-8000-000000000000', SYSTEM)).toBeUndefined();
    expect(evicted).toHaveLength(1);
  });
});
