/**
 * Which network addresses an image URL may reach. Only globally routable unicast addresses pass;
 * loopback, private (RFC 1918, unique-local), link-local (cloud metadata at 169.254.169.254),
 * carrier-grade NAT, multicast, reserved and unspecified are refused. IPv4-mapped IPv6 is judged as IPv4.
 */
import ipaddr from 'ipaddr.js';
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';

export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
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
