import { type ResourceType, flatResource } from '../api/documents.js';

/**
 * A resource as GraphQL shows it: its /v1 JSON form (api/documents.ts flatResource: id,
 * attributes, relationship ids) with the field names in camelCase (SPEC §8), so the two APIs
 * never drift apart. `links` stays a /v1 matter.
 */
export function graphNode<Row>(publicUrl: string, kind: ResourceType<Row>, row: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(flatResource(publicUrl, kind, row))) {
    if (name !== 'links') out[camelCase(name)] = value;
  }
  return out;
}

/** Field names are few and repeat on every row: each is converted once (the regex was 7% of a large query's CPU). */
const camelNames = new Map<string, string>();
function camelCase(name: string): string {
  let camel = camelNames.get(name);
  if (camel === undefined) {
    camel = name.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase());
    camelNames.set(name, camel);
  }
  return camel;
}
