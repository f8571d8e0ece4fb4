import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/env.js';

/**
 * Secrets the server must use again, not only check (a webhook's signing secret), are stored
 * encrypted with AES-256-GCM under a server key that is not in the database: a dump alone cannot
 * forge a signature. Stored form: `v1.<iv>.<ciphertext><tag>` (base64url), the secret's owner id
 * bound as associated data so a ciphertext copied onto another row does not decrypt.
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new ConfigError('the secrets key must be 32 bytes');
  }

  seal(plaintext: string, boundTo: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv).setAAD(Buffer.from(boundTo));
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `v1.${iv.toString('base64url')}.${sealed.toString('base64url')}`;
  }

  open(stored: string, boundTo: string): string {
    const [version, iv, sealed] = stored.split('.');
    if (version !== 'v1' || !iv || !sealed) throw new Error('not a sealed secret');
    const bytes = Buffer.from(sealed, 'base64url');
    if (bytes.length < 16) throw new Error('not a sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: 16 }).setAAD(
      Buffer.from(boundTo),
    );
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString('utf8');
  }
}

const KEY_FILE = 'secrets.key';

/**
 * The server key: SECRETS_KEY (32 bytes, base64), which every node of a cluster must share;
 * otherwise `<DATA_DIR>/secrets.key`, generated (mode 0600) the first time a secret is sealed;
 * with no DATA_DIR (an in-memory database, tests) a key that lives as long as the process, like
 * the data it protects (one per process, shared by every caller). Read lazily, so a server that never seals a secret never writes the file.
 */
export function serverSecretBox(configured: string | undefined, dataDir: string | undefined): () => SecretBox {
  // One box per key source in the process: every capability sealing secrets (and provisioning,
  // which runs before the app is built) then uses the same key, even the in-memory one.
  const source = `${configured ?? ''}\u0000${dataDir ?? ''}`;
  return () => {
    let box = BOXES.get(source);
    if (!box) {
      box = new SecretBox(serverKey(configured, dataDir));
      BOXES.set(source, box);
    }
    return box;
  };
}

const BOXES = new Map<string, SecretBox>();

/**
 * A key for one purpose (`info`, e.g. `sensorcloud/unsubscribe/v1`), derived with HKDF-SHA256 from
 * the server key, so the server key itself is only ever used for sealing. Lazy like the box; with
 * no DATA_DIR and no SECRETS_KEY the server key lives as long as the process.
 */
export function derivedServerKey(configured: string | undefined, dataDir: string | undefined, info: string): () => Buffer {
  let key: Buffer | undefined;
  return () => {
    key ??= Buffer.from(hkdfSync('sha256', serverKey(configured, dataDir), Buffer.alloc(0), info, 32));
    return key;
  };
}

function serverKey(configured: string | undefined, dataDir: string | undefined): Buffer {
  return configured ? decodeKey(configured, 'SECRETS_KEY') : keyFromFile(dataDir);
}

function decodeKey(text: string, source: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32) throw new ConfigError(`${source} must hold 32 random bytes in base64 (openssl rand -base64 32)`);
  return key;
}

function keyFromFile(dataDir: string | undefined): Buffer {
  if (!dataDir) return randomBytes(32);
  const file = path.join(dataDir, KEY_FILE);
  fs.mkdirSync(dataDir, { recursive: true });
  try {
    // 'wx': only one process creates the key; a second one reads what the first wrote.
    fs.writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return decodeKey(fs.readFileSync(file, 'utf8'), file);
}
