import { listPublishedKeys, rotateSigningKeys } from '../oauth/tokens/signing-keys.repo.js';
import { withDatabase } from './commands.js';
import { print } from './io.js';

/**
 * `sensorcloud keys rotate|list`: the signing keys of JWT access tokens. Rotation makes a new
 * current key; the previous ones stay published at /oauth/jwks until every token they signed has
 * expired. Running servers pick the new key up within a minute.
 */
export async function keysRotateCommand(): Promise<void> {
  await withDatabase(async ({ db }) => {
    const result = await rotateSigningKeys(db);
    print(`new signing key ${result.kid} is current`);
    for (const retired of result.retired) print(`retired ${retired.kid}; published until ${retired.publishUntil.toISOString()}`);
  });
}

export async function keysListCommand(): Promise<void> {
  await withDatabase(async ({ db }) => {
    const keys = await listPublishedKeys(db);
    if (keys.length === 0) print('no signing keys yet (one is created when the first JWT access token is issued)');
    for (const key of keys) {
      print(
        `${key.kid}  ${key.alg}  created ${key.createdAt.toISOString()}  ${key.retiredAt ? `retired, published until ${key.publishUntil?.toISOString()}` : 'current'}`,
      );
    }
  });
}
