import net from 'node:net';

/**
 * The "source" abuse budgets are kept for: the caller's address (request.ip, which honours
 * TRUST_PROXY), with an IPv4-mapped IPv6 address written as IPv4 and an IPv6 address reduced to
 * its /64, the smallest block a single subscriber is usually given (one host picks any address in
 * it at will).
 */
export function sourceOf(ip: string): string {
  if (ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7))) return ip.slice(7);
  if (!net.isIPv6(ip) || ip === '::1') return ip;
  const [head = '', tail = ''] = ip.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
