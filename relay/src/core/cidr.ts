/** IPv4 CIDR blocks: endpoint address pools and allowed source prefixes. */
export interface Ipv4Cidr {
  text: string;
  network: number;
  prefix: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(address: string): boolean {
  return IPV4.test(address);
}

export function ipv4ToInt(address: string): number | undefined {
  if (!isIpv4(address)) return undefined;
  return address.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function intToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseCidr(text: string): Ipv4Cidr | undefined {
  const match = /^([0-9.]+)\/(\d{1,2})$/.exec(text.trim());
  const bare = match ? undefined : ipv4ToInt(text.trim());
  if (!match) return bare === undefined ? undefined : { text: `${text.trim()}/32`, network: bare, prefix: 32 };
  const address = ipv4ToInt(match[1]!);
  const prefix = Number(match[2]);
  if (address === undefined || prefix > 32) return undefined;
  const network = (address & maskOf(prefix)) >>> 0;
  return { text: `${intToIpv4(network)}/${prefix}`, network, prefix };
}

/** Node reports IPv4 peers on dual-stack sockets as `::ffff:a.b.c.d`. */
export function normalizeRemoteAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export function cidrContains(cidr: Ipv4Cidr, address: string): boolean {
  const value = ipv4ToInt(normalizeRemoteAddress(address));
  return value !== undefined && ((value & maskOf(cidr.prefix)) >>> 0) === cidr.network;
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
      const candidate = intToIpv4(cidr.network + offset);
      if (!used.has(candidate)) return candidate;
    }
  }
  return undefined;
}
