import type { Ipv4Cidr } from '../core/cidr.js';
import type { MaxStartups } from '../core/preauth-limits.js';

/** A console channel's address: a unix socket path, a TCP host and port, or (libvirt's serial) a pty. */
export type SocketAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number } | { kind: 'pty'; path: string };

/** `raw`: bytes as they are. `telnet`: a QEMU chardev with `telnet=on` (strips negotiation, escapes 0xFF, can send BREAK). */
export type SerialProtocol = 'raw' | 'telnet';

export interface VirtualMachineConfig {
  name: string;
  serial?: SocketAddress;
  /** How the serial socket speaks; `raw` unless configured. */
  serialProtocol?: SerialProtocol;
  vnc?: SocketAddress;
  qmp?: SocketAddress;
}

/** A VM name: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit. */
export const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Where VMs are found besides `virtualMachines:` (config `discover:`). */
export type DiscoverySourceConfig = { kind: 'libvirt'; uri: string } | { kind: 'proxmox'; runDir: string; configDir: string };

/** Where a VM came from. */
export type VmSource = 'static' | DiscoverySourceConfig['kind'];

/** `api.tls`: `auto` = on when the API or an endpoint may listen off loopback. No cert/key: a self-signed one in `dataDir`. */
export interface TlsConfig {
  mode: 'auto' | 'on' | 'off';
  cert?: string;
  key?: string;
}

/** `role:` standalone (one relay on SQLite, the default), a fleet gateway, or a hypervisor agent (docs/fleet.md). */
export type RelayRole = 'standalone' | 'gateway' | 'agent';

export interface HostPort {
  host: string;
  port: number;
}

/** A gateway's fleet settings. */
export interface GatewayConfig {
  /** `store.postgres.url`, or LIFELINE_POSTGRES_URL. */
  postgresUrl: string;
  /** `agents.listen`: where agents dial in. */
  agentsListen: HostPort;
  /** `agents.advertiseAddress`: the host:port given to agents to reach this gateway; default the listen address (unless a wildcard). */
  agentsAdvertise?: HostPort;
}

/** An agent's fleet settings. */
export interface AgentConfig {
  name: string;
  gateways: HostPort[];
  /** `joinToken`, or LIFELINE_JOIN_TOKEN: needed until the agent has joined. */
  joinToken?: string;
  /** `joinTokenFile`: where to read the join token when it is not given ({agent}: the agent's name). */
  joinTokenFile?: string;
  /** The fleet's SSH host key fingerprint; without it the first gateway's key is trusted and pinned. */
  caFingerprint?: string;
}

export interface RelayConfig {
  /** Where the config came from, for messages. */
  source: string;
  /** Standalone unless the config says otherwise; `gateway` comes with `gateway`, `agent` with `agent`. */
  role?: RelayRole;
  gateway?: GatewayConfig;
  agent?: AgentConfig;
  dataDir: string;
  api: {
    host: string;
    port: number;
    tls: TlsConfig;
    loginGraceTimeMs: number;
    maxStartups: MaxStartups;
    perSourceMaxStartups: number;
    /** API connections in all (and at most half the open-file limit), per address, and per token. */
    maxConnections: number;
    maxConnectionsPerSource: number;
    maxConnectionsPerToken: number;
  };
  ssh: { port: number; keepaliveIntervalMs: number; keepaliveCountMax: number; loginGraceTimeMs: number; maxStartups: MaxStartups; perSourceMaxStartups: number; maxSessions: number };
  vnc: { port: number; pingIntervalMs: number; tokenTtlMs: number; loginGraceTimeMs: number; maxStartups: MaxStartups; perSourceMaxStartups: number; allowedOrigins: string[] };
  /** `default.advertiseAddress`: where clients are sent (token URLs, GET /v1/relay) when `ipAddress` is a wildcard or not reachable as it is. */
  endpoints: { default: { ipAddress: string; advertiseAddress?: string; allowedSourcePrefixes: Ipv4Cidr[] }; addressPool: Ipv4Cidr[] };
  consoles: { defaultTtlMs: number; maxTtlMs: number };
  serial: { replayBytes: number };
  /**
   * The audit trail `<dataDir>/audit.jsonl`: rotated past `maxFileBytes`; `keepFiles` rotated files kept, and none
   * whose last event is older than `maxAgeMs`; at most `refusalsPerMinute` refusals recorded one by one per token and per address.
   */
  audit: { maxFileBytes: number; keepFiles: number; maxAgeMs?: number; refusalsPerMinute: number };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  /** Session recordings (docs/recordings.md): where, what by default, and for how long. */
  recording: { dir: string; serial: boolean; vnc: boolean; input: boolean; retentionMs: number; checkpointIntervalMs: number; vncSegmentMs: number };
  virtualMachines: VirtualMachineConfig[];
  discover: DiscoverySourceConfig[];
}

export function describeAddress(address: SocketAddress): string {
  return address.kind === 'tcp' ? `tcp://${address.host}:${address.port}` : address.path;
}
