import { schemas } from '@lifeline/relay/client';
import { Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { DESKTOP_API_METHODS, type DesktopApi } from '../../preload/contract.js';

type Method = (typeof DESKTOP_API_METHODS)[number];

const id = Type.String({ minLength: 1, maxLength: 200 });
const name = schemas.Name;
const kind = schemas.ConsoleKindName;
/** A fingerprint, or pasted text holding one (the output of `lifeline-relay info`). */
const fingerprintText = Type.String({ maxLength: 4000 });
const strict = { additionalProperties: false } as const;

/**
 * The argument schema of every DesktopApi method: what IPC and the browser transport accept.
 * Each schema's type must be the method's parameter list (checked by `satisfies` below), so a
 * schema that lets through what the method cannot take does not compile.
 */
export const METHOD_ARGUMENTS = {
  getEmbeddedStatus: Type.Tuple([]),
  getSettings: Type.Tuple([]),
  getKeychainStatus: Type.Tuple([]),
  listRelays: Type.Tuple([]),
  inspectCertificate: Type.Tuple([Type.String({ minLength: 1, maxLength: 500 })]),
  addRelay: Type.Tuple([Type.Object({ name: Type.String({ maxLength: 100 }), url: Type.String({ minLength: 1, maxLength: 500 }), token: Type.String({ minLength: 1, maxLength: 600 }), tlsFingerprint: Type.Optional(fingerprintText) }, strict)]),
  updateRelay: Type.Tuple([
    Type.Object({ id, name: Type.Optional(Type.String({ maxLength: 100 })), token: Type.Optional(Type.String({ minLength: 1, maxLength: 600 })), endpoint: Type.Optional(name), tlsFingerprint: Type.Optional(fingerprintText) }, strict),
  ]),
  removeRelay: Type.Tuple([id]),
  listVms: Type.Tuple([]),
  renewConsole: Type.Tuple([id, name]),
  disableConsole: Type.Tuple([id, name]),
  deleteConsole: Type.Tuple([id, name]),
  powerAction: Type.Tuple([id, name, schemas.PowerActionName]),
  listEndpoints: Type.Tuple([id]),
  createEndpoint: Type.Tuple([id, Type.Object({ name, ipAddress: Type.Optional(Type.String({ maxLength: 64 })), allowedSourcePrefixes: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256 })) }, strict)]),
  deleteEndpoint: Type.Tuple([id, name]),
  openConsole: Type.Union([Type.Tuple([id, name, kind]), Type.Tuple([id, name, kind, Type.Object({ replaceKey: Type.Optional(Type.String({ pattern: '^SHA256:[A-Za-z0-9+/]{1,64}$' })), observe: Type.Optional(Type.Boolean()) }, strict)])]),
  reconnect: Type.Tuple([id]),
  reconnectWithNewKey: Type.Tuple([id]),
  closeTab: Type.Tuple([id]),
  resizeTerminal: Type.Tuple([id, Type.Integer({ minimum: 1, maximum: 1000 }), Type.Integer({ minimum: 1, maximum: 1000 })]),
  sendBreak: Type.Union([Type.Tuple([id]), Type.Tuple([id, Type.String({ pattern: '^[a-z0-9]$', description: 'one SysRq letter or digit' })])]),
  consoleControl: Type.Tuple([id, Type.Union([Type.Literal('request'), Type.Literal('approve'), Type.Literal('deny'), Type.Literal('handover')])]),
  listRecordings: Type.Tuple([id, name]),
  recordingCast: Type.Tuple([id, Type.String({ pattern: '^[0-9a-f-]{36}$' })]),
  recordingSegment: Type.Tuple([id, Type.String({ pattern: '^[0-9a-f-]{36}$' }), Type.String({ pattern: '^vnc-[0-9]{4,6}\\.rfb$' })]),
  setAutoRenew: Type.Tuple([Type.Boolean()]),
  setTheme: Type.Tuple([Type.Union([Type.Literal('system'), Type.Literal('light'), Type.Literal('dark')])]),
} satisfies { [M in Method]: TSchema & { static: Parameters<DesktopApi[M]> } };

export class InvalidCallError extends Error {
  override name = 'InvalidCallError';
}

/** Validates a call from the renderer (method name, then arguments) and runs it. */
export async function dispatch(api: DesktopApi, method: unknown, args: unknown): Promise<unknown> {
  if (typeof method !== 'string' || !(DESKTOP_API_METHODS as readonly string[]).includes(method)) {
    throw new InvalidCallError(`unknown method ${JSON.stringify(String(method)).slice(0, 80)}`);
  }
  const schema: TSchema = METHOD_ARGUMENTS[method as Method];
  if (!Value.Check(schema, args)) {
    const issue = Value.Errors(schema, args).First();
    const path = issue?.path.replace(/^\//, '').replace(/\//g, '.') ?? '';
    throw new InvalidCallError(`${method}: invalid argument ${path}: ${issue?.message ?? 'rejected'}`);
  }
  const call = api[method as Method] as (...values: unknown[]) => Promise<unknown>;
  return call.apply(api, args as unknown[]);
}
