import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { VM_NAME } from './config.js';

/*
 * The relay's config file as a user writes it (YAML or JSON), as one TypeBox schema: keys, types, ranges,
 * enumerations and defaults. `errorMessage` is the problem a ConfigError states when a value does not fit
 * (the keyword editors using vscode-json-languageservice also show). Values that need parsing beyond a
 * pattern (durations, CIDR blocks, socket addresses) are read by parse-config.ts after this check.
 */

/** A string with something in it besides blanks (strings are trimmed before the check). */
const text = (options: { default?: string; errorMessage?: string; pattern?: string; description?: string } = {}) =>
  Type.String({ minLength: 1, errorMessage: 'must be a non-empty string', ...options });
const integer = (fallback: number, minimum: number, maximum: number, description?: string) =>
  Type.Integer({ default: fallback, minimum, maximum, errorMessage: `must be an integer from ${minimum} to ${maximum}`, ...(description && { description }) });
const duration = (fallback?: string, description?: string) =>
  text({ ...(fallback !== undefined && { default: fallback }), errorMessage: 'must be a duration such as 90s, 15m, 24h or 30d', ...(description && { description }) });
/** A mapping whose keys are all known; absent, it is `{}` with its own defaults. */
const section = <T extends Record<string, TSchema>>(properties: T, description?: string) =>
  Type.Object(properties, { additionalProperties: false, default: {}, errorMessage: 'must be a mapping', ...(description && { description }) });
const list = <T extends TSchema>(items: T, fallback: unknown[], description?: string) =>
  Type.Array(items, { default: fallback, errorMessage: 'must be a list', ...(description && { description }) });
const oneOf = <T extends string>(values: readonly T[], errorMessage: string, fallback?: T) =>
  Type.Union(values.map((value) => Type.Literal(value)), { errorMessage, ...(fallback !== undefined && { default: fallback }) });

const maxStartups = (fallback: string) =>
  Type.Union([Type.String(), Type.Number()], {
    default: fallback,
    errorMessage: 'must be "start:rate:full" (e.g. 10:30:100: from 10 pending connections drop 30% of new ones, rising to all at 100) or one number',
    description: 'Like OpenSSH MaxStartups: unauthenticated connections from which new ones are dropped at random',
  });
/** on or off; YAML 1.1 readers turn a bare on/off into booleans, taken as meant. */
const onOff = (fallback: boolean, description: string) =>
  Type.Union([Type.Boolean(), Type.Literal('on'), Type.Literal('off')], { default: fallback, errorMessage: 'must be on or off', description });
const CIDR = text({ errorMessage: 'must be an IPv4 CIDR block such as 127.0.0.0/8' });
const SOCKET = text({ description: 'A unix socket path (relative to the config file) or tcp://host:port' });

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const TLS_MODES = ['auto', 'on', 'off'] as const;

const Tls = Type.Union(
  [
    // YAML 1.1 readers turn a bare on/off into booleans: taken as meant.
    Type.Boolean(),
    oneOf(TLS_MODES, 'must be auto, on, off or a mapping {mode, cert, key}'),
    Type.Object(
      {
        mode: Type.Optional(oneOf(TLS_MODES, 'must be auto, on or off')),
        cert: Type.Optional(text()),
        key: Type.Optional(text()),
      },
      { additionalProperties: false },
    ),
  ],
  {
    errorMessage: 'must be auto, on, off or a mapping {mode, cert, key}',
    description: 'auto (on when anything listens off loopback), on, off, or {mode, cert, key}; without cert and key the relay makes a self-signed certificate',
  },
);

const Serial = Type.Union(
  [
    text({ description: 'A unix socket path, tcp://host:port (raw) or telnet://host:port' }),
    Type.Object({ path: SOCKET, protocol: Type.Optional(oneOf(['raw', 'telnet'], 'must be raw or telnet')) }, { additionalProperties: false }),
  ],
  { errorMessage: 'must be a socket path, tcp://host:port, telnet://host:port or { path, protocol }' },
);

const VirtualMachine = Type.Object(
  {
    name: text({
      pattern: VM_NAME.source,
      errorMessage: "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
    }),
    serial: Type.Optional(Serial),
    vnc: Type.Optional(SOCKET),
    qmp: Type.Optional(SOCKET),
  },
  { additionalProperties: false, errorMessage: 'must be a mapping with name and serial/vnc/qmp' },
);

const Discovery = Type.Union(
  [
    Type.Object(
      { libvirt: Type.Object({ uri: text({ default: 'qemu:///system', pattern: '^[a-z][a-z0-9+]*://', errorMessage: 'must be a libvirt URI such as qemu:///system' }) }, { additionalProperties: false, errorMessage: 'must be a mapping' }) },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        proxmox: Type.Object(
          { runDir: text({ default: '/var/run/qemu-server' }), configDir: text({ default: '/etc/pve/qemu-server' }) },
          { additionalProperties: false, errorMessage: 'must be a mapping' },
        ),
      },
      { additionalProperties: false },
    ),
  ],
  { errorMessage: 'must be one of { libvirt: { uri } } or { proxmox: { runDir, configDir } }' },
);

export const ROLES = ['standalone', 'gateway', 'agent'] as const;
const HOST_PORT = text({ pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]]+):\\d{1,5}$', errorMessage: 'must be <host>:<port> such as gateway-1.example.com:3024 or [fd00::1]:3024' });
const strict = <T extends Record<string, TSchema>>(properties: T, description?: string) =>
  Type.Optional(Type.Object(properties, { additionalProperties: false, errorMessage: 'must be a mapping', ...(description && { description }) }));

/** The fleet's keys (docs/fleet.md): which role this process has, and what it needs for it. */
const Fleet = {
  role: oneOf(ROLES, `must be one of ${ROLES.join(', ')}`, 'standalone'),
  store: strict(
    {
      postgres: Type.Object(
        { url: text({ pattern: '^postgres(ql)?://', errorMessage: 'must be a PostgreSQL URL such as postgres://lifeline@db.example.com:5432/lifeline' }) },
        { additionalProperties: false, errorMessage: 'must be a mapping { url }' },
      ),
    },
    "A gateway's shared database (LIFELINE_POSTGRES_URL overrides the url)",
  ),
  agents: strict(
    {
      listen: text({ default: '0.0.0.0:3024', errorMessage: 'must be <ip>:<port> such as 0.0.0.0:3024' }),
      advertiseAddress: Type.Optional(HOST_PORT),
    },
    'Where agents dial in to a gateway (SSH), and the host:port this gateway gives agents to reach it',
  ),
  agent: strict(
    {
      name: Type.Optional(text({ pattern: VM_NAME.source, errorMessage: "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", description: 'LIFELINE_AGENT_NAME overrides it (a Kubernetes node name)' })),
      caFingerprint: Type.Optional(text({ pattern: '^SHA256:[A-Za-z0-9+/]{43}$', errorMessage: 'must be the SHA256:… fingerprint POST /v1/agentJoinTokens answered with' })),
    },
    "An agent's name in the fleet, and the fleet's SSH host key fingerprint it pins",
  ),
  gateways: Type.Optional(Type.Array(HOST_PORT, { errorMessage: 'must be a list', description: 'Gateways an agent dials (it learns the others from them)' })),
  joinToken: Type.Optional(text({ description: "An agent's single-use join token (LIFELINE_JOIN_TOKEN overrides), needed on its first start only" })),
  joinTokenFile: Type.Optional(text({ description: "A file holding the agent's join token; {agent} in the path is the agent's name (one Secret with a key per node, mounted as files); a missing file is no token" })),
};

export const ConfigDocument = Type.Object(
  {
    dataDir: text({ default: './lifeline-data', description: "The relay's data folder (store, host key, audit trail), relative to the config file" }),
    api: section({
      listen: text({ default: '127.0.0.1:8440', errorMessage: 'must be <ip>:<port> such as 127.0.0.1:8440' }),
      tls: Type.Optional(Tls),
      loginGraceTime: duration('20s'),
      maxStartups: maxStartups('64:30:256'),
      perSourceMaxStartups: integer(32, 1, 100_000),
      maxConnections: integer(1024, 1, 1_000_000, 'API connections in all (and at most half the open-file limit)'),
      maxConnectionsPerSource: integer(64, 1, 1_000_000),
      maxConnectionsPerToken: integer(32, 1, 1_000_000),
    }),
    ssh: section({
      port: integer(2222, 0, 65535),
      keepaliveInterval: duration('15s'),
      keepaliveCountMax: integer(3, 1, 100),
      loginGraceTime: duration('60s'),
      maxStartups: maxStartups('10:30:100'),
      perSourceMaxStartups: integer(8, 1, 100_000),
      maxSessions: integer(10, 1, 1000),
    }),
    vnc: section({
      port: integer(6080, 0, 65535),
      pingInterval: duration('30s'),
      tokenTtl: duration('60s'),
      loginGraceTime: duration('20s'),
      maxStartups: maxStartups('64:30:256'),
      perSourceMaxStartups: integer(32, 1, 100_000),
      allowedOrigins: list(text({ pattern: '^https?://[^/\\s]+$', errorMessage: 'must be an origin such as https://portal.example.com' }), []),
    }),
    endpoints: section({
      default: section({
        ipAddress: text({ default: '127.0.0.1', errorMessage: 'must be an IPv4 address such as 127.0.0.1' }),
        advertiseAddress: Type.Optional(text({ errorMessage: 'must be an IP address or a DNS name clients can reach (not a wildcard)' })),
        allowedSourcePrefixes: list(CIDR, []),
      }),
      addressPool: list(CIDR, ['127.0.0.0/8'], 'Where new private endpoints take their addresses'),
    }),
    consoles: section({ defaultTtl: duration('24h'), maxTtl: duration('30d') }),
    serial: section({ replayBytes: integer(64 * 1024, 0, 16 * 1024 * 1024, 'Serial output kept per VM and replayed to a new session') }),
    log: section({ level: oneOf(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`, 'info') }),
    audit: section({
      maxFileBytes: integer(16 * 1024 * 1024, 64 * 1024, 2 ** 40),
      keepFiles: integer(10, 1, 10_000),
      maxAge: Type.Optional(duration()),
      refusalsPerMinute: integer(60, 1, 100_000),
    }),
    recording: section(
      {
        dir: Type.Optional(text({ description: 'Where recordings are kept, relative to the config file (default: <dataDir>/recordings)' })),
        serial: onOff(false, 'Record serial sessions of consoles whose recording is default'),
        vnc: onOff(false, 'Record VNC sessions of consoles whose recording is default'),
        input: onOff(false, 'Record what the controller typed too (passwords typed at a prompt end up in the recording)'),
        retention: duration('90d', 'Recordings older than this are deleted (audited), unless on legal hold'),
        checkpointInterval: duration('60s', 'How often a running recording\'s hashes go to the audit trail'),
        vncSegment: duration('30s', 'How long a VNC recording\'s segments run: each starts with a full frame, so playback seeks within this'),
      },
      'Session recordings (docs/recordings.md)',
    ),
    virtualMachines: list(VirtualMachine, []),
    discover: list(Discovery, []),
    ...Fleet,
  },
  { additionalProperties: false, errorMessage: 'the config must be a mapping' },
);

/** The config document after its defaults are filled in. */
export type ConfigDocument = Static<typeof ConfigDocument>;

/** A schema as a user writes it: a property with a default is required after defaults are filled in, not in the file. */
function asWritten(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(asWritten);
  if (typeof schema !== 'object' || schema === null) return schema;
  const result: Record<string, unknown> = { ...schema };
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties') result.properties = Object.fromEntries(Object.entries(value as object).map(([name, property]) => [name, asWritten(property)]));
    else if (key === 'items' || key === 'anyOf') result[key] = asWritten(value);
  }
  const properties = result.properties as Record<string, { default?: unknown }> | undefined;
  if (Array.isArray(result.required) && properties) {
    const required = (result.required as string[]).filter((name) => properties[name]?.default === undefined);
    if (required.length > 0) result.required = required;
    else delete result.required;
  }
  return result;
}

/**
 * The schema as a JSON Schema file (docs/relay-config.schema.json) for editors: with
 * `# yaml-language-server: $schema=<path>` on its first line a relay.yaml gets completion and these checks.
 */
export function configJsonSchema(): Record<string, unknown> {
  return { $schema: 'http://json-schema.org/draft-07/schema#', title: 'Lifeline relay config (relay.yaml)', ...(asWritten(ConfigDocument) as Record<string, unknown>) };
}
