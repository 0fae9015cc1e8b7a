import { Type, type Static } from '@sinclair/typebox';

/** The control API's wire schemas (v1). Types for clients are derived from these, never written twice. */

export const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }),
});

const Name = Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });

export const VmParams = Type.Object({ vm: Name }, { additionalProperties: false });
export const EndpointParams = Type.Object({ name: Name }, { additionalProperties: false });
export const SessionParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

export const SshPublicKeyBody = Type.Object(
  { keyData: Type.String({ minLength: 1, maxLength: 16384 }) },
  { additionalProperties: false },
);

export const ConsolePutBody = Type.Object(
  {
    enabled: Type.Boolean(),
    sshPublicKey: SshPublicKeyBody,
    expiration: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

export const ConsolePatchBody = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    sshPublicKey: Type.Optional(SshPublicKeyBody),
    expiration: Type.Optional(Type.String({ maxLength: 64 })),
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
});

export const PowerState = Type.Union([Type.Literal('Running'), Type.Literal('Paused'), Type.Literal('Stopped'), Type.Literal('Unavailable')]);

export const PowerActionName = Type.Union([Type.Literal('reset'), Type.Literal('powerOff'), Type.Literal('powerOn'), Type.Literal('nmi')]);

export const PowerActionBody = Type.Object({ action: PowerActionName }, { additionalProperties: false });
export type PowerActionBody = Static<typeof PowerActionBody>;

export const PowerActionAccepted = Type.Object({ virtualMachine: Type.String(), action: PowerActionName, status: Type.Literal('Accepted') });

export const VirtualMachineResource = Type.Object({
  name: Type.String(),
  powerState: PowerState,
  consoleTypes: Type.Array(Type.Union([Type.Literal('serial'), Type.Literal('vnc')])),
  /** The power actions the VM's backend offers (additive). */
  powerActions: Type.Array(PowerActionName),
  /** Where the VM came from: the config, or a discovery source (additive). */
  source: Type.Union([Type.Literal('static'), Type.Literal('libvirt'), Type.Literal('proxmox')]),
  /** Whether the serial port takes an SSH break, i.e. SysRq (additive). */
  serialBreak: Type.Boolean(),
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
  ipAddress: Type.String(),
  sshPort: Type.Integer(),
  vncPort: Type.Integer(),
  allowedSourcePrefixes: Type.Array(Type.String()),
  provisioningState: Type.Union([Type.Literal('Succeeded'), Type.Literal('Failed')]),
});

export const EndpointList = Type.Object({ value: Type.Array(EndpointResource) });

export const RelayInfo = Type.Object({
  id: Type.String(),
  version: Type.String(),
  sshHostKeys: Type.Array(Type.Object({ type: Type.String(), fingerprint: Type.String(), publicKey: Type.String() })),
  endpoints: Type.Array(EndpointResource),
  consoleDefaults: Type.Object({ defaultTtlSeconds: Type.Integer(), maxTtlSeconds: Type.Integer() }),
});

export const SessionResource = Type.Object({
  id: Type.String(),
  virtualMachine: Type.String(),
  kind: Type.Union([Type.Literal('serial'), Type.Literal('vnc')]),
  path: Type.Union([Type.Literal('ssh'), Type.Literal('websocket')]),
  endpoint: Type.String(),
  remoteAddress: Type.String(),
  startedAt: Type.String(),
  bytesIn: Type.Integer(),
  bytesOut: Type.Integer(),
});

export const SessionList = Type.Object({ value: Type.Array(SessionResource) });

export const VncTokenQuery = Type.Object({ endpoint: Type.Optional(Name) }, { additionalProperties: false });

export const VncToken = Type.Object({
  token: Type.String(),
  url: Type.String({ description: 'http://<endpoint ip>:<vncPort>/?token=…; ws:// on the same address carries the RFB stream' }),
  expiresAt: Type.String(),
  virtualMachine: Type.String(),
  endpoint: Type.String(),
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
