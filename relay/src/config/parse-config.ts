import { isIP } from 'node:net';
import { isAbsolute, join, resolve } from 'node:path';
import { parseCidr, type Ipv4Cidr } from '../core/cidr.js';
import { parseDuration } from '../core/duration.js';
import { parseMaxStartups, type MaxStartups } from '../core/preauth-limits.js';
import { checkDocument } from './check-document.js';
import type { DiscoverySourceConfig, RelayConfig, SocketAddress, TlsConfig, VirtualMachineConfig } from './config.js';
import { ConfigError, describeValue } from './config-error.js';
import type { ConfigDocument } from './config-schema.js';
import { fleetOf } from './fleet-config.js';
import { parseListen } from './listen-address.js';

export { ConfigError } from './config-error.js';

/*
 * The config document (checked and defaulted by its schema, config-schema.ts) read into the relay's
 * RelayConfig: durations in milliseconds, addresses parsed, paths resolved against the config file's
 * folder, and the rules that span keys.
 */

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** An address clients can be sent to: an IP other than a wildcard, or a DNS name. */
export function isAdvertisable(host: string): boolean {
  if (isIP(host) !== 0) return host !== '0.0.0.0' && host !== '::';
  return HOST_NAME.test(host) && !/^\d+(\.\d+)*$/.test(host);
}

/**
 * A wildcard default endpoint (0.0.0.0, as in containers) listens everywhere but cannot be
 * given to clients: the relay needs to know what to advertise (`advertiseAddress`, or the
 * LIFELINE_ADVERTISE_ADDRESS environment variable, applied before this check).
 */
export function checkAdvertised(config: RelayConfig): void {
  const { ipAddress, advertiseAddress } = config.endpoints.default;
  if ((ipAddress === '0.0.0.0' || ipAddress === '::') && advertiseAddress === undefined) {
    throw new ConfigError(
      'endpoints.default.advertiseAddress',
      `is needed when endpoints.default.ipAddress is ${ipAddress} (every address): token URLs and GET /v1/relay would send clients to ${ipAddress}. Set it to the address or DNS name clients reach this relay at, or set LIFELINE_ADVERTISE_ADDRESS (in Kubernetes: the pod's status.podIP)`,
    );
  }
}

/** `tcp://host:port` or a unix socket path (relative paths are resolved against the config file's folder). */
export function parseSocketAddress(key: string, text: string, baseDir: string): SocketAddress {
  if (text.startsWith('tcp://')) {
    const match = /^tcp:\/\/(.+):(\d{1,5})$/.exec(text);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) throw new ConfigError(key, `must be tcp://<host>:<port>, got ${describeValue(text)}`);
    return { kind: 'tcp', host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  }
  if (/^[a-z]+:\/\//.test(text)) throw new ConfigError(key, `must be a unix socket path or tcp://<host>:<port>, got ${describeValue(text)}`);
  const path = isAbsolute(text) ? text : resolve(baseDir, text);
  // sun_path holds 108 bytes including the terminating NUL.
  if (Buffer.byteLength(path) > 107) throw new ConfigError(key, `unix socket path is longer than 107 bytes: ${path}`);
  return { kind: 'unix', path };
}

function duration(key: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new ConfigError(key, `must be a duration such as 90s, 15m, 24h or 30d, got ${describeValue(text)}`);
  return ms;
}

function maxStartups(key: string, value: string | number): MaxStartups {
  const parsed = parseMaxStartups(String(value));
  if (!parsed) throw new ConfigError(key, `must be "start:rate:full" (e.g. 10:30:100: from 10 pending connections drop 30% of new ones, rising to all at 100) or one number, got ${describeValue(value)}`);
  return parsed;
}

function cidrs(key: string, texts: string[]): Ipv4Cidr[] {
  return texts.map((text, index) => {
    const cidr = parseCidr(text);
    if (!cidr) throw new ConfigError(`${key}[${index}]`, `must be an IPv4 CIDR block such as 127.0.0.0/8, got ${describeValue(text)}`);
    return cidr;
  });
}

/** `serial:` as a unix path, `tcp://host:port`, `telnet://host:port`, or `{ path: <unix path or tcp://…>, protocol: raw | telnet }`. */
function serialOf(key: string, serial: ConfigDocument['virtualMachines'][number]['serial'], baseDir: string): Pick<VirtualMachineConfig, 'serial' | 'serialProtocol'> {
  if (serial === undefined) return {};
  if (typeof serial === 'string') {
    if (serial.startsWith('telnet://')) return { serial: parseSocketAddress(key, `tcp://${serial.slice('telnet://'.length)}`, baseDir), serialProtocol: 'telnet' };
    return { serial: parseSocketAddress(key, serial, baseDir), serialProtocol: 'raw' };
  }
  return { serial: parseSocketAddress(`${key}.path`, serial.path, baseDir), serialProtocol: serial.protocol ?? 'raw' };
}

function virtualMachinesOf(vms: ConfigDocument['virtualMachines'], baseDir: string): VirtualMachineConfig[] {
  const seen = new Set<string>();
  return vms.map((vm, index) => {
    const key = `virtualMachines[${index}]`;
    const address = (field: 'vnc' | 'qmp'): SocketAddress | undefined => {
      const text = vm[field];
      return text === undefined ? undefined : parseSocketAddress(`${key}.${field}`, text, baseDir);
    };
    const result: VirtualMachineConfig = { name: vm.name, ...serialOf(`${key}.serial`, vm.serial, baseDir), vnc: address('vnc'), qmp: address('qmp') };
    if (!result.serial && !result.vnc) throw new ConfigError(`${key} (${vm.name})`, 'needs a serial socket path, a vnc socket path, or both');
    if (seen.has(vm.name)) throw new ConfigError(`${key}.name`, `duplicate VM name ${JSON.stringify(vm.name)}`);
    seen.add(vm.name);
    return result;
  });
}

function discoveryOf(source: ConfigDocument['discover'][number], baseDir: string): DiscoverySourceConfig {
  if ('libvirt' in source) return { kind: 'libvirt', uri: source.libvirt.uri };
  return { kind: 'proxmox', runDir: resolve(baseDir, source.proxmox.runDir), configDir: resolve(baseDir, source.proxmox.configDir) };
}

/**
 * `api.tls`: `auto` (the default: on when anything listens off loopback), `on`, `off`, or a
 * mapping `{mode?, cert?, key?}`. A mapping with `cert` and `key` and no `mode` means `on`
 * (the shape v1 configs used); without them the relay makes and keeps a self-signed certificate.
 */
function tlsOf(tls: ConfigDocument['api']['tls'], baseDir: string): TlsConfig {
  if (tls === undefined) return { mode: 'auto' };
  if (typeof tls === 'boolean') return { mode: tls ? 'on' : 'off' };
  if (typeof tls === 'string') return { mode: tls };
  const { cert, key } = tls;
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError(`api.tls.${cert === undefined ? 'cert' : 'key'}`, 'give both cert and key, or neither (the relay then makes a self-signed certificate)');
  return { mode: tls.mode ?? (cert ? 'on' : 'auto'), ...(cert && key && { cert: resolve(baseDir, cert), key: resolve(baseDir, key) }) };
}

const isOn = (value: boolean | 'on' | 'off'): boolean => value === true || value === 'on';

/** Validates a parsed config document; `source` is the file it came from (relative paths resolve against its folder). */
export function parseConfig(document: unknown, source: string, baseDir: string): RelayConfig {
  const { api, ssh, vnc, endpoints, consoles, serial, log, audit, recording, role, store, agents, agent, gateways, joinToken, joinTokenFile, ...root } = checkDocument(document);
  const { ipAddress, advertiseAddress } = endpoints.default;
  if (isIP(ipAddress) !== 4) throw new ConfigError('endpoints.default.ipAddress', `must be an IPv4 address such as 127.0.0.1, got ${describeValue(ipAddress)}`);
  if (advertiseAddress !== undefined && !isAdvertisable(advertiseAddress)) {
    throw new ConfigError('endpoints.default.advertiseAddress', `must be an IP address or a DNS name clients can reach (not a wildcard), got ${describeValue(advertiseAddress)}`);
  }
  const defaultTtlMs = duration('consoles.defaultTtl', consoles.defaultTtl);
  const maxTtlMs = duration('consoles.maxTtl', consoles.maxTtl);
  if (defaultTtlMs > maxTtlMs) throw new ConfigError('consoles.defaultTtl', 'must not be longer than consoles.maxTtl');
  return {
    source,
    ...fleetOf({ role, store, agents, agent, gateways, joinToken, joinTokenFile }),
    dataDir: resolve(baseDir, root.dataDir),
    api: {
      ...parseListen('api.listen', api.listen, '127.0.0.1:8440'),
      tls: tlsOf(api.tls, baseDir),
      loginGraceTimeMs: duration('api.loginGraceTime', api.loginGraceTime),
      maxStartups: maxStartups('api.maxStartups', api.maxStartups),
      perSourceMaxStartups: api.perSourceMaxStartups,
      maxConnections: api.maxConnections,
      maxConnectionsPerSource: api.maxConnectionsPerSource,
      maxConnectionsPerToken: api.maxConnectionsPerToken,
    },
    ssh: {
      port: ssh.port,
      keepaliveIntervalMs: duration('ssh.keepaliveInterval', ssh.keepaliveInterval),
      keepaliveCountMax: ssh.keepaliveCountMax,
      loginGraceTimeMs: duration('ssh.loginGraceTime', ssh.loginGraceTime),
      maxStartups: maxStartups('ssh.maxStartups', ssh.maxStartups),
      perSourceMaxStartups: ssh.perSourceMaxStartups,
      maxSessions: ssh.maxSessions,
    },
    vnc: {
      port: vnc.port,
      pingIntervalMs: duration('vnc.pingInterval', vnc.pingInterval),
      tokenTtlMs: duration('vnc.tokenTtl', vnc.tokenTtl),
      loginGraceTimeMs: duration('vnc.loginGraceTime', vnc.loginGraceTime),
      maxStartups: maxStartups('vnc.maxStartups', vnc.maxStartups),
      perSourceMaxStartups: vnc.perSourceMaxStartups,
      allowedOrigins: vnc.allowedOrigins.map((origin) => origin.toLowerCase()),
    },
    endpoints: {
      default: { ipAddress, ...(advertiseAddress !== undefined && { advertiseAddress }), allowedSourcePrefixes: cidrs('endpoints.default.allowedSourcePrefixes', endpoints.default.allowedSourcePrefixes) },
      addressPool: cidrs('endpoints.addressPool', endpoints.addressPool),
    },
    consoles: { defaultTtlMs, maxTtlMs },
    serial: { replayBytes: serial.replayBytes },
    log: { level: log.level },
    audit: {
      maxFileBytes: audit.maxFileBytes,
      keepFiles: audit.keepFiles,
      ...(audit.maxAge !== undefined && { maxAgeMs: duration('audit.maxAge', audit.maxAge) }),
      refusalsPerMinute: audit.refusalsPerMinute,
    },
    recording: {
      dir: resolve(baseDir, recording.dir ?? join(root.dataDir, 'recordings')),
      serial: isOn(recording.serial),
      vnc: isOn(recording.vnc),
      input: isOn(recording.input),
      retentionMs: duration('recording.retention', recording.retention),
      checkpointIntervalMs: duration('recording.checkpointInterval', recording.checkpointInterval),
      vncSegmentMs: duration('recording.vncSegment', recording.vncSegment),
    },
    virtualMachines: virtualMachinesOf(root.virtualMachines, baseDir),
    discover: root.discover.map((source) => discoveryOf(source, baseDir)),
  };
}
