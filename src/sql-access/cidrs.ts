import ipaddr from 'ipaddr.js';

/**
 * The address ranges a login is accepted from, as PostgreSQL's `cidr` takes them: a network
 * (`203.0.113.0/24`) or one address (a /32 or /128). Each is checked here so that a bad one is a
 * 422 naming it rather than an error of the database; host bits set to the right of the prefix
 * (`10.0.0.1/8`) are refused rather than silently widened or narrowed.
 */

export interface CidrIssue {
  index: number;
  message: string;
}

export type ParsedCidrs = { cidrs: string[] } | { issues: CidrIssue[] };

/** Strict forms only: four-part decimal IPv4 (not `10` or `0x0a.1`), IPv6 without a zone. */
const isAddress = (text: string) => ipaddr.IPv4.isValidFourPartDecimal(text) || (ipaddr.IPv6.isValid(text) && !text.includes('%'));

/** An IPv4 address as IPv4 even when written (or seen, on a dual-stack socket) as `::ffff:a.b.c.d`. */
function unmapped(text: string): { address: ipaddr.IPv4 | ipaddr.IPv6; mapped: boolean } {
  const address = ipaddr.parse(text);
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress())
    return { address: (address as ipaddr.IPv6).toIPv4Address(), mapped: true };
  return { address, mapped: false };
}

function parseOne(text: string): string | { message: string } {
  const [addressPart = '', prefixPart, ...rest] = text.trim().split('/');
  if (rest.length > 0 || !isAddress(addressPart)) return { message: `"${text}" is not an IP address or CIDR range` };
  const { address, mapped } = unmapped(addressPart);
  const width = address.kind() === 'ipv4' ? 32 : 128;
  if (prefixPart !== undefined && !/^\d{1,3}$/.test(prefixPart)) return { message: `"${text}" has no valid prefix length` };
  const prefix = prefixPart === undefined ? width : Number(prefixPart) - (mapped ? 96 : 0);
  if (prefix < 0 || prefix > width) return { message: `"${text}": the prefix length must be 0 to ${mapped ? 128 : width}` };
  const canonical = `${address.toString()}/${prefix}`;
  const network = (address.kind() === 'ipv4' ? ipaddr.IPv4 : ipaddr.IPv6).networkAddressFromCIDR(canonical).toString();
  if (network !== address.toString())
    return { message: `"${text}" has bits set to the right of the prefix; the network is ${network}/${prefix}` };
  return canonical;
}

/** Every range canonical (duplicates dropped), or every issue with its index. */
export function parseCidrs(texts: readonly string[]): ParsedCidrs {
  const issues: CidrIssue[] = [];
  const cidrs = new Set<string>();
  texts.forEach((text, index) => {
    const parsed = parseOne(text);
    if (typeof parsed === 'string') cidrs.add(parsed);
    else issues.push({ index, message: parsed.message });
  });
  return issues.length > 0 ? { issues } : { cidrs: [...cidrs] };
}

/** The caller's own address as a one-address range (the default of a new login). */
export function ownAddressRange(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  const { address: parsed } = unmapped(address);
  return `${parsed.toString()}/${parsed.kind() === 'ipv4' ? 32 : 128}`;
}
