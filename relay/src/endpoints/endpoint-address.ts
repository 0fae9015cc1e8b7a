import { isIPv4 } from 'node:net';
import { cidrContains, nextFreeAddress, parseCidr, type Ipv4Cidr } from '../core/cidr.js';
import { DomainError } from '../core/domain-error.js';

/** A PUT's body: where to listen and whom to admit. */
export interface EndpointInput {
  ipAddress?: string;
  allowedSourcePrefixes?: string[];
}

/**
 * A private endpoint's address and source prefixes from a PUT: the address given (one address,
 * inside the pool, not another endpoint's) or, without one, the endpoint's current address or
 * the pool's next free one; every prefix a CIDR block.
 */
export function endpointAddress(input: EndpointInput, context: { current: string | undefined; used: ReadonlySet<string>; pool: readonly Ipv4Cidr[] }): { prefixes: Ipv4Cidr[]; ipAddress: string } {
  const { current, used, pool } = context;
  const prefixes = (input.allowedSourcePrefixes ?? []).map((text, index) => {
    const cidr = parseCidr(text);
    if (!cidr) throw new DomainError('invalid', 'InvalidSourcePrefix', `allowedSourcePrefixes[${index}]: "${text.slice(0, 64)}" is not an IPv4 CIDR block such as 10.0.0.0/24`);
    return cidr;
  });
  let ipAddress: string;
  if (input.ipAddress !== undefined) {
    if (!isIPv4(input.ipAddress)) throw new DomainError('invalid', 'InvalidIpAddress', `ipAddress: "${input.ipAddress.slice(0, 64)}" is not an IPv4 address`);
    // A private endpoint is one address clients are sent to: a wildcard would be advertised as 0.0.0.0.
    if (input.ipAddress === '0.0.0.0') throw new DomainError('invalid', 'InvalidIpAddress', 'ipAddress: a private endpoint listens on one address, not on every address (0.0.0.0); give the address clients reach it at');
    if (!pool.some((cidr) => cidrContains(cidr, input.ipAddress!))) {
      throw new DomainError('unprocessable', 'AddressOutsidePool', `ipAddress ${input.ipAddress} is outside the relay's address pool (${pool.map((c) => c.text).join(', ')})`);
    }
    if (used.has(input.ipAddress)) throw new DomainError('conflict', 'AddressInUse', `ipAddress ${input.ipAddress} is already used by another endpoint`);
    ipAddress = input.ipAddress;
  } else {
    const next = current ?? nextFreeAddress(pool, used);
    if (!next) throw new DomainError('conflict', 'AddressPoolExhausted', 'no free address is left in the relay\'s address pool; delete an endpoint or give ipAddress');
    ipAddress = next;
  }
  return { prefixes, ipAddress };
}
