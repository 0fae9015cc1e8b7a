import { Type, type Static } from '@sinclair/typebox';
import { SCOPES, VM_GLOB } from '../core/scopes.js';

/** The control API's wire schemas (v1). Types for clients are derived from these, never written twice. */

export const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }),
});

/** A VM or endpoint name (VM_NAME). */
export const Name = Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
/** The kinds of console a VM may have. */
export const ConsoleKindName = Type.Union([Type.Literal('serial'), Type.Literal('vnc')]);

export const VmParams = Type.Object({ vm: Name }, { additionalProperties: false });
export const EndpointParams = Type.Object({ name: Name }, { additionalProperties: false });
export const SessionParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

export const SshPublicKeyBody = Type.Object(
  { keyData: Type.String({ minLength: 1, maxLength: 16384 }) },
  { additionalProperties: false },
);

/** A console's sharing and recording settings (docs/sharing.md, docs/recordings.md). */
export const ConsoleRecordingMode = Type.Union([Type.Literal('required'), Type.Literal('off'), Type.Literal('default')], { description: 'required: always recorded; off: never; default: as the relay\'s recording config says' });
const SharingFields = {
  allowObservers: Type.Optional(Type.Boolean({ description: 'key holders may join read-only (default false)' })),
  maxObservers: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'observers at once per console kind (default 4)' })),
  recording: Type.Optional(ConsoleRecordingMode),
};

export const ConsolePutBody = Type.Object(
  {
    enabled: Type.Boolean(),
    sshPublicKey: SshPublicKeyBody,
    expiration: Type.Optional(Type.String({ maxLength: 64 })),
    ...SharingFields,
  },
  { additionalProperties: false },
);

export const ConsolePatchBody = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    sshPublicKey: Type.Optional(SshPublicKeyBody),
    expiration: Type.Optional(Type.String({ maxLength: 64 })),
    ...SharingFields,
  },
  { additionalProperties: false, minProperties: 1 },
);

export const ConsoleResource = Type.Object({
  virtualMachine: Type.String(),
  enabled: Type.Boolean(),
  sshPublicKey: Type.Object({ keyData: Type.String() }),
  keyFingerprint: Type.String(),
  expiration: Type.String({ description: 'RFC 3339, UTC' }),
  virtualMachineAccessId: Type.String({ description: 'the SSH user name' }),
  provisioningState: Type.Literal('Succeeded'),
  detailedStatus: Type.Union([Type.Literal('Ready'), Type.Literal('Disabled'), Type.Literal('Expired')]),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  // Always sent by this relay; optional in the schema so that clients validating replies still accept a relay from before them.
  allowObservers: Type.Optional(Type.Boolean()),
  maxObservers: Type.Optional(Type.Integer()),
  recording: Type.Optional(ConsoleRecordingMode),
});

export const PowerState = Type.Union([Type.Literal('Running'), Type.Literal('Paused'), Type.Literal('Stopped'), Type.Literal('Unavailable')]);

export const PowerActionName = Type.Union([Type.Literal('reset'), Type.Literal('shutdown'), Type.Literal('powerOff'), Type.Literal('powerOn'), Type.Literal('nmi')]);

export const PowerActionBody = Type.Object({ action: PowerActionName }, { additionalProperties: false });
export type PowerActionBody = Static<typeof PowerActionBody>;

export const PowerActionAccepted = Type.Object({ virtualMachine: Type.String(), action: PowerActionName, status: Type.Literal('Accepted') });

export const VirtualMachineResource = Type.Object({
  name: Type.String(),
  powerState: PowerState,
  consoleTypes: Type.Array(ConsoleKindName),
  /** The power actions the VM's backend offers (additive). */
  powerActions: Type.Array(PowerActionName),
  /** Where the VM came from: the config, or a discovery source (additive). */
  source: Type.Union([Type.Literal('static'), Type.Literal('libvirt'), Type.Literal('proxmox')]),
  /** Whether the serial port takes an SSH break, i.e. SysRq (additive). */
  serialBreak: Type.Boolean(),
  /** On a fleet gateway: the hypervisor agent the VM is on (additive). */
  agent: Type.Optional(Type.String()),
  console: Type.Optional(ConsoleResource),
});

export const VirtualMachineList = Type.Object({ value: Type.Array(VirtualMachineResource) });

export const EndpointPutBody = Type.Object(
  {
    ipAddress: Type.Optional(Type.String({ maxLength: 64 })),
    allowedSourcePrefixes: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256 })),
  },
  { additionalProperties: false },
);

export const EndpointResource = Type.Object({
  name: Type.String(),
  ipAddress: Type.String({ description: 'the address its listeners are bound to' }),
  advertiseAddress: Type.String({ description: 'where clients connect (token URLs use it): the default endpoint\'s advertiseAddress, else ipAddress' }),
  sshPort: Type.Integer(),
  vncPort: Type.Integer(),
  allowedSourcePrefixes: Type.Array(Type.String()),
  provisioningState: Type.Union([Type.Literal('Succeeded'), Type.Literal('Failed')]),
});

export const EndpointList = Type.Object({ value: Type.Array(EndpointResource) });

const ScopeName = Type.Union(SCOPES.map((scope) => Type.Literal(scope)));
const VmGlob = Type.String({ minLength: 1, maxLength: 63, pattern: VM_GLOB.source });

/** A token as lists show it: never its secret. */
export const TokenResource = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: 'the first characters of the token, to recognise it by; empty for a token given through LIFELINE_ADMIN_TOKEN' }),
  scopes: Type.Array(ScopeName),
  virtualMachines: Type.Optional(Type.Array(Type.String(), { description: 'VM name globs the token is limited to; absent: every VM' })),
  createdAt: Type.String(),
  expiresAt: Type.Optional(Type.String()),
  lastUsedAt: Type.Optional(Type.String({ description: 'to the minute' })),
});

export const RelayInfo = Type.Object({
  id: Type.String(),
  version: Type.String(),
  sshHostKeys: Type.Array(Type.Object({ type: Type.String(), fingerprint: Type.String(), publicKey: Type.String() })),
  endpoints: Type.Array(EndpointResource),
  consoleDefaults: Type.Object({ defaultTtlSeconds: Type.Integer(), maxTtlSeconds: Type.Integer() }),
  tlsFingerprint: Type.Optional(Type.String({ description: 'SHA-256 of the API and WebSocket certificate (AB:CD:…); absent when TLS is off' })),
  caller: Type.Optional(Type.Omit(TokenResource, ['lastUsedAt'], { description: 'the token this request came with' })),
});

export const TokenCreateBody = Type.Object(
  {
    name: Name,
    scopes: Type.Array(ScopeName, { minItems: 1, maxItems: SCOPES.length, uniqueItems: true }),
    virtualMachines: Type.Optional(Type.Array(VmGlob, { minItems: 1, maxItems: 64, uniqueItems: true })),
    expiresAt: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

export const TokenCreated = Type.Intersect([TokenResource, Type.Object({ token: Type.String({ description: 'the secret: shown this once' }) })]);
export const TokenList = Type.Object({ value: Type.Array(TokenResource) });
export const TokenParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9-]+$' }) }, { additionalProperties: false });

export const AuditQuery = Type.Object(
  {
    since: Type.Optional(Type.String({ maxLength: 64, description: 'RFC 3339: events at or after this time' })),
    afterSeq: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'events after this sequence number (paging: pass nextAfterSeq)' })),
    vm: Type.Optional(Name),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: '1 to 1000, default 100' })),
  },
  { additionalProperties: false },
);

export const AuditEventList = Type.Object({
  value: Type.Array(Type.Object({ seq: Type.Integer(), time: Type.String(), type: Type.String(), prev: Type.String(), hash: Type.String() }, { additionalProperties: true })),
  nextAfterSeq: Type.Optional(Type.Integer({ description: 'present when more events match: pass it as afterSeq' })),
});

export const SessionResource = Type.Object({
  id: Type.String(),
  virtualMachine: Type.String(),
  kind: ConsoleKindName,
  path: Type.Union([Type.Literal('ssh'), Type.Literal('websocket')]),
  endpoint: Type.String(),
  remoteAddress: Type.String(),
  startedAt: Type.String(),
  bytesIn: Type.Integer(),
  bytesOut: Type.Integer(),
  /** On a fleet gateway: the gateway holding the session (additive); byte counts of another gateway's session are at most a few seconds old. */
  gateway: Type.Optional(Type.String()),
  /** Its part on the VM's console: the controller (whose input reaches the VM) or an observer (docs/sharing.md). */
  role: Type.Optional(Type.Union([Type.Literal('controller'), Type.Literal('observer')])),
  /** On a controller: the observer asking it for control now. */
  controlRequestedBy: Type.Optional(Type.String()),
});

export const ControlBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 200, description: 'why control is taken: recorded in the audit trail and told to the participants' }) },
  { additionalProperties: false },
);
export type ControlBody = Static<typeof ControlBody>;

export const SessionList = Type.Object({ value: Type.Array(SessionResource) });

export const VncTokenQuery = Type.Object(
  {
    endpoint: Type.Optional(Name),
    mode: Type.Optional(Type.Union([Type.Literal('control'), Type.Literal('observe')], { description: 'observe: a read-only view beside the VM\'s session, where its console allows observers (docs/sharing.md); default control' })),
  },
  { additionalProperties: false },
);

export const VncToken = Type.Object({
  token: Type.String(),
  url: Type.String({ description: 'http(s)://<endpoint ip>:<vncPort>/?token=…; ws(s):// on the same address carries the RFB stream' }),
  expiresAt: Type.String(),
  virtualMachine: Type.String(),
  endpoint: Type.String(),
  /** Present for an observer's token. */
  mode: Type.Optional(Type.Literal('observe')),
});

export const Health = Type.Object({ status: Type.String(), store: Type.Boolean(), listeners: Type.Boolean() });

export type ConsolePutBody = Static<typeof ConsolePutBody>;
export type ConsolePatchBody = Static<typeof ConsolePatchBody>;
export type ConsoleResource = Static<typeof ConsoleResource>;
export type VirtualMachineResource = Static<typeof VirtualMachineResource>;
export type EndpointPutBody = Static<typeof EndpointPutBody>;
export type EndpointResource = Static<typeof EndpointResource>;
export type RelayInfo = Static<typeof RelayInfo>;
export type SessionResource = Static<typeof SessionResource>;
export type ErrorBody = Static<typeof ErrorBody>;
export type VncToken = Static<typeof VncToken>;
export type TokenResource = Static<typeof TokenResource>;
export type TokenCreateBody = Static<typeof TokenCreateBody>;
export type TokenCreated = Static<typeof TokenCreated>;
export type AuditQuery = Static<typeof AuditQuery>;

/** A session recording's manifest (docs/recordings.md), with its legal hold. */
export const RecordingResource = Type.Object(
  {
    format: Type.String(),
    id: Type.String(),
    relayId: Type.String(),
    virtualMachine: Type.String(),
    kind: Type.Union([Type.Literal('serial'), Type.Literal('vnc')]),
    startedAt: Type.String(),
    endedAt: Type.Optional(Type.String()),
    complete: Type.Boolean({ description: 'false while recording, and for a recording its relay never sealed' }),
    input: Type.Boolean(),
    terminal: Type.Optional(Type.Object({ width: Type.Integer(), height: Type.Integer() }, { description: 'a serial recording\'s terminal at the start' })),
    screen: Type.Optional(Type.Object({ width: Type.Integer(), height: Type.Integer(), name: Type.String() }, { description: 'a VNC recording\'s screen at the start' })),
    participants: Type.Array(Type.Object({ session: Type.String(), role: Type.String(), path: Type.String(), remoteAddress: Type.String(), joinedAt: Type.String(), leftAt: Type.Optional(Type.String()), leftBecause: Type.Optional(Type.String()) }, { additionalProperties: true })),
    markers: Type.Array(Type.Object({ time: Type.Number(), label: Type.String() })),
    segments: Type.Array(Type.Object({ name: Type.String(), bytes: Type.Integer(), sha256: Type.String(), start: Type.Optional(Type.Number({ description: 'a VNC segment: seconds into the recording of its full frame' })), end: Type.Optional(Type.Number()) })),
    hold: Type.Optional(Type.Object({ reason: Type.String(), since: Type.String() })),
  },
  { additionalProperties: true },
);
export const RecordingList = Type.Object({ value: Type.Array(RecordingResource) });
export type RecordingResource = Static<typeof RecordingResource>;
