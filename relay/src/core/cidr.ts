import ipaddr from 'ipaddr.js';

/*
 * IPv4 CIDR blocks: endpoint address pools and allowed source prefixes, on ipaddr.js (address
 * parsing, IPv4-mapped IPv6, prefix matching) instead of bit arithmetic by hand.
 */
export interface Ipv4Cidr {
  /** The block as written back: its network address and prefix (`127.0.0.0/8`). */
  text: string;
  /** The network address as a 32-bit number (pools count up from it). */
  network: number;
  prefix: number;
}

/** A dotted-quad IPv4 address (no `127.1`, hex or octal forms ipaddr.js would also take). */
export function isIpv4(address: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(address);
}

const toNumber = (address: ipaddr.IPv4): number => address.toByteArray().reduce((acc, octet) => acc * 256 + octet, 0);
const fromNumber = (value: number): string => ipaddr.fromByteArray([24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256)).toString();

export function parseCidr(text: string): Ipv4Cidr | undefined {
  const trimmed = text.trim();
  const [address = '', length, ...rest] = trimmed.split('/');
  if (rest.length > 0 || !isIpv4(address) || (length !== undefined && !/^\d{1,2}$/.test(length))) return undefined;
  const prefix = length === undefined ? 32 : Number(length);
  if (prefix > 32) return undefined;
  const network = ipaddr.IPv4.networkAddressFromCIDR(`${address}/${prefix}`);
  return { text: `${network.toString()}/${prefix}`, network: toNumber(network), prefix };
}

/** An address as the relay writes and compares it: an IPv4 peer on a dual-stack socket (`::ffff:a.b.c.d`) as plain IPv4. */
export function normalizeRemoteAddress(address: string | undefined): string {
  if (!address) return '';
  return ipaddr.isValid(address) ? ipaddr.process(address).toString() : address;
}

export function cidrContains(cidr: Ipv4Cidr, address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.process(address);
  return parsed.kind() === 'ipv4' && (parsed as ipaddr.IPv4).match(ipaddr.IPv4.parse(fromNumber(cidr.network)), cidr.prefix);
}

/** An empty allow list admits every source, as a private endpoint without a rule does. */
export function sourceAllowed(prefixes: readonly Ipv4Cidr[], address: string): boolean {
  return prefixes.length === 0 || prefixes.some((cidr) => cidrContains(cidr, address));
}

/** The first usable host address of the pool not in `used` (skips network and broadcast addresses of blocks wider than /31). */
export function nextFreeAddress(pool: readonly Ipv4Cidr[], used: ReadonlySet<string>): string | undefined {
  for (const cidr of pool) {
    const size = 2 ** (32 - cidr.prefix);
    const first = cidr.prefix >= 31 ? 0 : 1;
    const last = cidr.prefix >= 31 ? size - 1 : size - 2;
    for (let offset = first; offset <= last; offset++) {
      const candidate = fromNumber(cidr.network + offset);
      if (!used.has(candidate)) return candidate;
    }
  }
  return undefined;
}
