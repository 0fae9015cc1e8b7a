import { isIP } from 'node:net';
import type { HostPort } from './config.js';
import { ConfigError, describeValue } from './config-error.js';

/** `<ip>:<port>` (`[v6]:port` too) of a listener on this host; port 0 lets the system pick. */
export function parseListen(key: string, text: string, example: string): HostPort {
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const host = match?.[1]?.replace(/^\[(.*)\]$/, '$1');
  const port = Number(match?.[2]);
  if (!host || isIP(host) === 0 || port > 65535) {
    throw new ConfigError(key, `must be <ip>:<port> such as ${example} (an address of this host, not a name), got ${describeValue(text)}`);
  }
  return { host, port };
}

/** `host:port` or `[v6]:port` a process dials; `host` an IP or a DNS name. */
export function parseHostPort(key: string, text: string): HostPort {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (!match || !host || port < 1 || port > 65535 || (match[1] !== undefined && isIP(match[1]) !== 6)) {
    throw new ConfigError(key, `must be <host>:<port> such as gateway-1.example.com:3024 or [fd00::1]:3024, got ${describeValue(text)}`);
  }
  return { host, port };
}
