/* eslint-disable max-lines -- over 300 lines until the hand-written Section validator goes when the config moves to TypeBox (issue 19, part 3). */
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { parseCidr, type Ipv4Cidr } from '../core/cidr.js';
import { parseDuration } from '../core/duration.js';
import { parseMaxStartups, type MaxStartups } from '../core/preauth-limits.js';
import { VM_NAME, type DiscoverySourceConfig, type RelayConfig, type TlsConfig, type SocketAddress, type VirtualMachineConfig } from './config.js';

/** A config problem, named by its key path (`api.listen`, `virtualMachines[1].serial`). */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : `${typeof value} ${String(value).slice(0, 40)}`;
}

/** Reads one mapping of the config, remembering its path and refusing keys it does not know. */
class Section {
  constructor(
    private readonly path: string,
    private readonly value: Json,
    known: readonly string[],
  ) {
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) throw new ConfigError(this.key(key), `unknown key; expected one of ${known.join(', ')}`);
    }
  }

  key(name: string): string {
    // A key that is empty or not a plain word is quoted, so the message still shows where it is.
    const shown = /^[A-Za-z0-9_]+$/.test(name) ? name : JSON.stringify(name.slice(0, 40));
    return this.path ? `${this.path}.${shown}` : shown;
  }

  has(name: string): boolean {
    return this.value[name] !== undefined;
  }

  /** The raw value, for fields that take more than one shape. */
  raw(name: string): unknown {
    return this.value[name];
  }

  section(name: string, known: readonly string[]): Section {
    const raw = this.value[name] ?? {};
    if (!isObject(raw)) throw new ConfigError(this.key(name), `must be a mapping, got ${describe(raw)}`);
    return new Section(this.key(name), raw, known);
  }

  string(name: string, fallback?: string): string {
    const raw = this.value[name] ?? fallback;
    if (raw === undefined) throw new ConfigError(this.key(name), 'is required');
    if (typeof raw !== 'string' || raw.trim() === '') throw new ConfigError(this.key(name), `must be a non-empty string, got ${describe(raw)}`);
    return raw.trim();
  }

  optionalString(name: string): string | undefined {
    return this.has(name) ? this.string(name) : undefined;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.value[name] ?? fallback;
    if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < min || raw > max) {
      throw new ConfigError(this.key(name), `must be an integer from ${min} to ${max}, got ${describe(raw)}`);
    }
    return raw;
  }

  duration(name: string, fallback: string): number {
    const raw = this.value[name] ?? fallback;
    const ms = typeof raw === 'string' ? parseDuration(raw) : undefined;
    if (ms === undefined) throw new ConfigError(this.key(name), `must be a duration such as 90s, 15m, 24h or 30d, got ${describe(raw)}`);
    return ms;
  }

  list(name: string, fallback: unknown[]): unknown[] {
    const raw = this.value[name] ?? fallback;
    if (!Array.isArray(raw)) throw new ConfigError(this.key(name), `must be a list, got ${describe(raw)}`);
    return raw;
  }

  cidrs(name: string, fallback: string[]): Ipv4Cidr[] {
    return this.list(name, fallback).map((item, index) => {
      const cidr = typeof item === 'string' ? parseCidr(item) : undefined;
      if (!cidr) throw new ConfigError(`${this.key(name)}[${index}]`, `must be an IPv4 CIDR block such as 127.0.0.0/8, got ${describe(item)}`);
      return cidr;
    });
  }

  ipv4(name: string, fallback: string): string {
    const raw = this.string(name, fallback);
    if (isIP(raw) !== 4) throw new ConfigError(this.key(name), `must be an IPv4 address such as 127.0.0.1, got ${describe(raw)}`);
    return raw;
  }
}

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

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function parseListen(key: string, text: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const host = match?.[1]?.replace(/^\[(.*)\]$/, '$1');
  const port = Number(match?.[2]);
  if (!host || isIP(host) === 0 || port > 65535) {
    throw new ConfigError(key, `must be <ip>:<port> such as 127.0.0.1:8440, got ${describe(text)}`);
  }
  return { host, port };
}

/** `tcp://host:port` or a unix socket path (relative paths are resolved against the config file's folder). */
export function parseSocketAddress(key: string, text: string, baseDir: string): SocketAddress {
  if (text.startsWith('tcp://')) {
    const match = /^tcp:\/\/(.+):(\d{1,5})$/.exec(text);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) throw new ConfigError(key, `must be tcp://<host>:<port>, got ${describe(text)}`);
    return { kind: 'tcp', host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  }
  if (/^[a-z]+:\/\//.test(text)) throw new ConfigError(key, `must be a unix socket path or tcp://<host>:<port>, got ${describe(text)}`);
  const path = isAbsolute(text) ? text : resolve(baseDir, text);
  // sun_path holds 108 bytes including the terminating NUL.
  if (Buffer.byteLength(path) > 107) throw new ConfigError(key, `unix socket path is longer than 107 bytes: ${path}`);
  return { kind: 'unix', path };
}

/**
 * `serial:` as a unix path, `tcp://host:port`, `telnet://host:port`, or a mapping
 * `{ path: <unix path or tcp://…>, protocol: raw | telnet }`.
 */
function parseSerial(vm: Section, baseDir: string): Pick<VirtualMachineConfig, 'serial' | 'serialProtocol'> {
  const raw = vm.raw('serial');
  if (raw === undefined) return {};
  if (typeof raw === 'string') {
    if (raw.startsWith('telnet://')) return { serial: parseSocketAddress(vm.key('serial'), `tcp://${raw.slice('telnet://'.length)}`, baseDir), serialProtocol: 'telnet' };
    return { serial: parseSocketAddress(vm.key('serial'), raw, baseDir), serialProtocol: 'raw' };
  }
  if (!isObject(raw)) throw new ConfigError(vm.key('serial'), `must be a socket path, tcp://host:port, telnet://host:port or { path, protocol }, got ${describe(raw)}`);
  const section = new Section(vm.key('serial'), raw, ['path', 'protocol']);
  const protocol = section.string('protocol', 'raw');
  if (protocol !== 'raw' && protocol !== 'telnet') throw new ConfigError(section.key('protocol'), `must be raw or telnet, got ${describe(protocol)}`);
  return { serial: parseSocketAddress(section.key('path'), section.string('path'), baseDir), serialProtocol: protocol };
}

function parseVirtualMachine(raw: unknown, index: number, baseDir: string): VirtualMachineConfig {
  const key = `virtualMachines[${index}]`;
  if (!isObject(raw)) throw new ConfigError(key, `must be a mapping with name and serial/vnc/qmp, got ${describe(raw)}`);
  const vm = new Section(key, raw, ['name', 'serial', 'vnc', 'qmp']);
  const name = vm.string('name');
  if (!VM_NAME.test(name)) throw new ConfigError(vm.key('name'), `must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit, got ${describe(name)}`);
  const address = (field: 'serial' | 'vnc' | 'qmp'): SocketAddress | undefined => {
    const text = vm.optionalString(field);
    return text === undefined ? undefined : parseSocketAddress(vm.key(field), text, baseDir);
  };
  const serial = parseSerial(vm, baseDir);
  const result: VirtualMachineConfig = { name, ...serial, vnc: address('vnc'), qmp: address('qmp') };
  if (!result.serial && !result.vnc) {
    throw new ConfigError(`${key} (${name})`, 'needs a serial socket path, a vnc socket path, or both');
  }
  return result;
}

function parseDiscovery(raw: unknown, index: number, baseDir: string): DiscoverySourceConfig {
  const key = `discover[${index}]`;
  if (!isObject(raw) || Object.keys(raw).length !== 1) throw new ConfigError(key, `must be one of { libvirt: { uri } } or { proxmox: { runDir, configDir } }, got ${describe(raw)}`);
  const source = new Section(key, raw, ['libvirt', 'proxmox']);
  if (source.has('libvirt')) {
    const libvirt = source.section('libvirt', ['uri']);
    const uri = libvirt.string('uri', 'qemu:///system');
    if (!/^[a-z][a-z0-9+]*:\/\//.test(uri)) throw new ConfigError(libvirt.key('uri'), `must be a libvirt URI such as qemu:///system, got ${describe(uri)}`);
    return { kind: 'libvirt', uri };
  }
  const proxmox = source.section('proxmox', ['runDir', 'configDir']);
  return {
    kind: 'proxmox',
    runDir: resolve(baseDir, proxmox.string('runDir', '/var/run/qemu-server')),
    configDir: resolve(baseDir, proxmox.string('configDir', '/etc/pve/qemu-server')),
  };
}

const TLS_MODES = ['auto', 'on', 'off'] as const;

/**
 * `api.tls`: `auto` (the default: on when anything listens off loopback), `on`, `off`, or a
 * mapping `{mode?, cert?, key?}`. A mapping with `cert` and `key` and no `mode` means `on`
 * (the shape v1 configs used); without them the relay makes and keeps a self-signed certificate.
 */
function parseTls(api: Section, baseDir: string): TlsConfig {
  const raw = api.raw('tls');
  if (raw === undefined) return { mode: 'auto' };
  // YAML 1.1 readers turn a bare on/off into booleans: take them as meant.
  if (raw === true || raw === false) return { mode: raw ? 'on' : 'off' };
  if (typeof raw === 'string') {
    if (!(TLS_MODES as readonly string[]).includes(raw)) throw new ConfigError(api.key('tls'), `must be auto, on, off or a mapping {mode, cert, key}, got ${describe(raw)}`);
    return { mode: raw as TlsConfig['mode'] };
  }
  const section = api.section('tls', ['mode', 'cert', 'key']);
  const cert = section.optionalString('cert');
  const key = section.optionalString('key');
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError(section.key(cert === undefined ? 'cert' : 'key'), 'give both cert and key, or neither (the relay then makes a self-signed certificate)');
  const modeText = section.optionalString('mode') ?? (cert ? 'on' : 'auto');
  if (!(TLS_MODES as readonly string[]).includes(modeText)) throw new ConfigError(section.key('mode'), `must be auto, on or off, got ${describe(modeText)}`);
  return { mode: modeText as TlsConfig['mode'], ...(cert && key && { cert: resolve(baseDir, cert), key: resolve(baseDir, key) }) };
}

/** Validates a parsed config document; `source` is the file it came from (relative paths resolve against its folder). */
export function parseConfig(document: unknown, source: string, baseDir: string): RelayConfig {
  if (!isObject(document)) throw new ConfigError('(top level)', `the config must be a mapping, got ${describe(document)}`);
  const root = new Section('', document, ['dataDir', 'api', 'ssh', 'vnc', 'endpoints', 'consoles', 'serial', 'log', 'audit', 'virtualMachines', 'discover']);

  const api = root.section('api', ['listen', 'tls', 'loginGraceTime', 'maxStartups', 'perSourceMaxStartups', 'maxConnections', 'maxConnectionsPerSource', 'maxConnectionsPerToken']);
  const listen = parseListen(api.key('listen'), api.string('listen', '127.0.0.1:8440'));
  const tls = parseTls(api, baseDir);

  const ssh = root.section('ssh', ['port', 'keepaliveInterval', 'keepaliveCountMax', 'loginGraceTime', 'maxStartups', 'perSourceMaxStartups', 'maxSessions']);
  const vnc = root.section('vnc', ['port', 'pingInterval', 'tokenTtl', 'loginGraceTime', 'maxStartups', 'perSourceMaxStartups', 'allowedOrigins']);
  const maxStartups = (section: Section, fallback: string): MaxStartups => {
    const raw = section.raw('maxStartups');
    const text = raw === undefined ? fallback : typeof raw === 'string' || typeof raw === 'number' ? String(raw) : undefined;
    const parsed = text === undefined ? undefined : parseMaxStartups(text);
    if (!parsed) throw new ConfigError(section.key('maxStartups'), `must be "start:rate:full" (e.g. 10:30:100: from 10 pending connections drop 30% of new ones, rising to all at 100) or one number, got ${describe(raw)}`);
    return parsed;
  };
  const endpoints = root.section('endpoints', ['default', 'addressPool']);
  const defaultEndpoint = endpoints.section('default', ['ipAddress', 'advertiseAddress', 'allowedSourcePrefixes']);
  const advertiseAddress = defaultEndpoint.optionalString('advertiseAddress');
  if (advertiseAddress !== undefined && !isAdvertisable(advertiseAddress)) {
    throw new ConfigError(defaultEndpoint.key('advertiseAddress'), `must be an IP address or a DNS name clients can reach (not a wildcard), got ${describe(advertiseAddress)}`);
  }
  const consoles = root.section('consoles', ['defaultTtl', 'maxTtl']);
  const defaultTtlMs = consoles.duration('defaultTtl', '24h');
  const maxTtlMs = consoles.duration('maxTtl', '30d');
  if (defaultTtlMs > maxTtlMs) throw new ConfigError(consoles.key('defaultTtl'), 'must not be longer than consoles.maxTtl');
  const serial = root.section('serial', ['replayBytes']);
  const audit = root.section('audit', ['maxFileBytes', 'keepFiles', 'maxAge', 'refusalsPerMinute']);
  const log = root.section('log', ['level']);
  const level = log.string('level', 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError(log.key('level'), `must be one of ${LOG_LEVELS.join(', ')}`);

  const vmList = root.list('virtualMachines', []);
  const virtualMachines = vmList.map((raw, index) => parseVirtualMachine(raw, index, baseDir));
  const discover = root.list('discover', []).map((raw, index) => parseDiscovery(raw, index, baseDir));
  const seen = new Set<string>();
  for (const [index, vm] of virtualMachines.entries()) {
    if (seen.has(vm.name)) throw new ConfigError(`virtualMachines[${index}].name`, `duplicate VM name ${JSON.stringify(vm.name)}`);
    seen.add(vm.name);
  }

  return {
    source,
    dataDir: resolve(baseDir, root.string('dataDir', './lifeline-data')),
    api: {
      ...listen,
      tls,
      loginGraceTimeMs: api.duration('loginGraceTime', '20s'),
      maxStartups: maxStartups(api, '64:30:256'),
      perSourceMaxStartups: api.integer('perSourceMaxStartups', 32, 1, 100_000),
      maxConnections: api.integer('maxConnections', 1024, 1, 1_000_000),
      maxConnectionsPerSource: api.integer('maxConnectionsPerSource', 64, 1, 1_000_000),
      maxConnectionsPerToken: api.integer('maxConnectionsPerToken', 32, 1, 1_000_000),
    },
    ssh: {
      port: ssh.integer('port', 2222, 0, 65535),
      keepaliveIntervalMs: ssh.duration('keepaliveInterval', '15s'),
      keepaliveCountMax: ssh.integer('keepaliveCountMax', 3, 1, 100),
      loginGraceTimeMs: ssh.duration('loginGraceTime', '60s'),
      maxStartups: maxStartups(ssh, '10:30:100'),
      perSourceMaxStartups: ssh.integer('perSourceMaxStartups', 8, 1, 100_000),
      maxSessions: ssh.integer('maxSessions', 10, 1, 1000),
    },
    vnc: {
      port: vnc.integer('port', 6080, 0, 65535),
      pingIntervalMs: vnc.duration('pingInterval', '30s'),
      tokenTtlMs: vnc.duration('tokenTtl', '60s'),
      loginGraceTimeMs: vnc.duration('loginGraceTime', '20s'),
      maxStartups: maxStartups(vnc, '64:30:256'),
      perSourceMaxStartups: vnc.integer('perSourceMaxStartups', 32, 1, 100_000),
      allowedOrigins: vnc.list('allowedOrigins', []).map((item, index) => {
        if (typeof item !== 'string' || !/^https?:\/\/[^/\s]+$/.test(item)) throw new ConfigError(`${vnc.key('allowedOrigins')}[${index}]`, `must be an origin such as https://portal.example.com, got ${describe(item)}`);
        return item.toLowerCase();
      }),
    },
    endpoints: {
      default: {
        ipAddress: defaultEndpoint.ipv4('ipAddress', '127.0.0.1'),
        ...(advertiseAddress !== undefined && { advertiseAddress }),
        allowedSourcePrefixes: defaultEndpoint.cidrs('allowedSourcePrefixes', []),
      },
      addressPool: endpoints.cidrs('addressPool', ['127.0.0.0/8']),
    },
    consoles: { defaultTtlMs, maxTtlMs },
    serial: { replayBytes: serial.integer('replayBytes', 64 * 1024, 0, 16 * 1024 * 1024) },
    log: { level: level as RelayConfig['log']['level'] },
    audit: {
      maxFileBytes: audit.integer('maxFileBytes', 16 * 1024 * 1024, 64 * 1024, 2 ** 40),
      keepFiles: audit.integer('keepFiles', 10, 1, 10_000),
      ...(audit.has('maxAge') && { maxAgeMs: audit.duration('maxAge', '') }),
      refusalsPerMinute: audit.integer('refusalsPerMinute', 60, 1, 100_000),
    },
    virtualMachines,
    discover,
  };
}
