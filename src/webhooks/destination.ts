import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Webhook destinations must be public: a URL resolving to a private, loopback, link-local or
 * otherwise special address would let a tenant make the server probe its own network (SSRF).
 * Checked when a subscription is saved and again on every connection (`publicOnlyLookup`), so a
 * name that later resolves elsewhere (DNS rebinding) is refused at delivery. WEBHOOK_ALLOW_PRIVATE
 * lifts the rule (a receiver on the same host or LAN).
 */

/**
 * Only globally routable unicast addresses (an IPv4-mapped IPv6 address counts as its IPv4). For
 * IPv6 also only the global unicast block 2000::/3: ipaddr.js calls some special prefixes
 * (IPv4-compatible ::/96, local-use NAT64 64:ff9b:1::/48, site-local fec0::/10) `unicast`.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.process(address);
  if (parsed.range() !== 'unicast') return false;
  return parsed.kind() === 'ipv4' || ((parsed as ipaddr.IPv6).parts[0]! & 0xe000) === 0x2000;
}

export class DestinationRefused extends Error {}

/** Why `url` may not be a destination, or undefined. Resolves the host name. */
export async function destinationProblem(url: string, allowPrivate: boolean): Promise<string | undefined> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not an absolute URL';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'must use https (or http)';
  if (parsed.username || parsed.password) return 'must not carry credentials';
  if (allowPrivate) return undefined;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  try {
    const addresses = ipaddr.isValid(host) ? [host] : (await dns.promises.lookup(host, { all: true })).map((a) => a.address);
    if (addresses.some((address) => !isPublicAddress(address))) return 'resolves to a private, loopback or link-local address';
  } catch {
    return 'does not resolve';
  }
  return undefined;
}

/** A `lookup` for outgoing connections that refuses non-public addresses (DNS rebinding). */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '', 0);
    const list = addresses as dns.LookupAddress[];
    const refused = list.find((a) => !isPublicAddress(a.address));
    if (refused) return callback(new DestinationRefused(`${hostname} resolves to a non-public address`), '', 0);
    if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
    const first = list[0]!;
    callback(null, first.address, first.family);
  });
};
