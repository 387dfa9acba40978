/**
 * Which network addresses an image URL may reach. Only globally routable unicast addresses pass;
 * loopback, private (RFC 1918, unique-local), link-local (cloud metadata at 169.254.169.254),
 * carrier-grade NAT, multicast, reserved and unspecified are refused. IPv4-mapped IPv6 is judged as IPv4.
 * IPv4-compatible IPv6 (`::/96`, e.g. `::127.0.0.1` = `::7f00:1`) is refused whole: RFC 4291 §2.5.5.1
 * deprecates it, no public host needs it, and judging it by the embedded IPv4 would trust every stack
 * on the way to treat it the same.
 */
import ipaddr from 'ipaddr.js';
import dns from 'node:dns';
import net, { type LookupFunction } from 'node:net';

// Node's own parser, not ipaddr.js: ipaddr.js reads the dotted form `::a.b.c.d` as `::ffff:a.b.c.d`
// (IPv4-mapped), so `::8.8.8.8` would pass as public while `::808:808`, the same address, would not.
// Built once and never changed after.
const IPV4_COMPATIBLE = new net.BlockList();
IPV4_COMPATIBLE.addSubnet('::', 96, 'ipv6');

export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  if (net.isIPv6(address) && IPV4_COMPATIBLE.check(address, 'ipv6')) return false;
  const parsed = ipaddr.process(address);
  return parsed.range() === 'unicast';
}

export class ForbiddenAddressError extends Error {
  readonly code = 'E_FORBIDDEN_ADDRESS';
  constructor(readonly address: string) {
    super(`resolves to a non-public address (${address})`);
  }
}

/**
 * A `lookup` for net.connect that refuses names resolving to non-public addresses. It is called for
 * every connection the agent opens, so it also covers redirects and DNS answers that change between
 * checks (rebinding): the address checked is the address connected to.
 */
export function createSafeLookup(allowPrivate: boolean): LookupFunction {
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const list = addresses as dns.LookupAddress[];
      const bad = allowPrivate ? undefined : list.find((a) => !isPublicAddress(a.address));
      if (bad) return callback(new ForbiddenAddressError(bad.address));
      if (list.length === 0) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }));
      if (options.all) return callback(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  }) as LookupFunction;
}
