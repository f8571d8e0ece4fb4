import { readFileSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const SPEC_EXAMPLE = path.join(FIXTURES, 'spec-example.yaml');

/** The SPEC §7 example as plain data, a fresh copy on every call (tests mutate it). */
export async function specExample(): Promise<any> {
  return YAML.parse(await fs.readFile(SPEC_EXAMPLE, 'utf8'));
}

/**
 * What a suite provisions beyond the SPEC §7 example: users and clients of its organization acme
 * (merged by email / client_id into the example's, new ones appended) and further organizations.
 */
export interface SpecExampleAdditions {
  acme?: { users?: Record<string, unknown>[]; clients?: Record<string, unknown>[] };
  organizations?: Record<string, unknown>[];
}

/**
 * The SPEC §7 example as provisioning YAML, with a suite's additions (an object or its YAML). The
 * example's own text is kept as written (quoting, comments), so tests may edit it as text.
 */
export function specExampleYaml(additions: SpecExampleAdditions | string = {}): string {
  const extra: SpecExampleAdditions = typeof additions === 'string' ? (YAML.parse(additions) ?? {}) : additions;
  const doc = YAML.parseDocument(readFileSync(SPEC_EXAMPLE, 'utf8'));
  const organizations = doc.get('organizations') as YAML.YAMLSeq;
  const acme = organizations.items.find((org) => YAML.isMap(org) && org.get('slug') === 'acme') as YAML.YAMLMap;
  const merge = (section: 'users' | 'clients', key: string) => {
    const entries = acme.get(section) as YAML.YAMLSeq;
    for (const addition of extra.acme?.[section] ?? []) {
      const existing = entries.items.find((entry) => YAML.isMap(entry) && entry.get(key) === addition[key]) as YAML.YAMLMap | undefined;
      if (!existing) entries.add(doc.createNode(addition));
      else for (const [field, value] of Object.entries(addition)) existing.set(field, doc.createNode(value));
    }
  };
  merge('users', 'email');
  merge('clients', 'client_id');
  for (const organization of extra.organizations ?? []) organizations.add(doc.createNode(organization));
  return doc.toString();
}

/** Every user's password in provisioning YAML, by email. */
export function passwordsOf(provisioning: string): Record<string, string> {
  const file = YAML.parse(provisioning) as { organizations?: { users?: { email: string; password?: string }[] }[] };
  const users = (file.organizations ?? []).flatMap((org) => org.users ?? []);
  return Object.fromEntries(users.filter((u) => u.password !== undefined).map((u) => [u.email, u.password!]));
}

/** Every secret the SPEC §7 example carries; none may appear in the database. */
export const SPEC_EXAMPLE_SECRETS = [
  'Adm1n-pass-acme',
  'V1ewer-pass-acme',
  'ext-acme-viewer',
  'acme-solution-key',
  'acme-password-secret',
  'acme-m2m-secret',
  'acme-web-secret',
  'acme-ext-secret',
  'sk_live_acmeci0000000000000000000000',
  'sc_dev_acme0001000000000000000000000',
];

/** A scratch directory removed when the process ends. */
let scratch: string | undefined;
export async function scratchDir(): Promise<string> {
  if (!scratch) {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'sensorcloud-files-'));
    const dir = scratch;
    process.once('exit', () => {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    });
  }
  return scratch;
}

let counter = 0;
/** Writes text (or data as YAML/JSON by the extension) to a new file and returns its path. */
export async function writeFile(name: string, content: string | object): Promise<string> {
  const dir = path.join(await scratchDir(), String(++counter));
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  const text = typeof content === 'string' ? content : name.endsWith('.json') ? JSON.stringify(content, null, 2) : YAML.stringify(content);
  await fs.writeFile(file, text);
  return file;
}
