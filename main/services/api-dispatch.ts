import { z } from 'zod';
import { DESKTOP_API_METHODS, type DesktopApi } from '../../preload/contract.js';

const id = z.string().min(1).max(200);
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a name of letters, digits, ".", "_" or "-"');
const kind = z.enum(['serial', 'vnc']);
/** A fingerprint, or pasted text holding one (the output of `lifeline-relay info`). */
const fingerprintText = z.string().max(4000);

/** The argument schema of every DesktopApi method: what IPC and the browser transport accept. */
export const METHOD_ARGUMENTS = {
  getEmbeddedStatus: z.tuple([]),
  getSettings: z.tuple([]),
  getKeychainStatus: z.tuple([]),
  listRelays: z.tuple([]),
  inspectCertificate: z.tuple([z.string().min(1).max(500)]),
  addRelay: z.tuple([z.object({ name: z.string().max(100), url: z.string().min(1).max(500), token: z.string().min(1).max(600), tlsFingerprint: fingerprintText.optional() }).strict()]),
  updateRelay: z.tuple([z.object({ id, name: z.string().max(100).optional(), token: z.string().min(1).max(600).optional(), endpoint: name.optional(), tlsFingerprint: fingerprintText.optional() }).strict()]),
  removeRelay: z.tuple([id]),
  listVms: z.tuple([]),
  renewConsole: z.tuple([id, name]),
  disableConsole: z.tuple([id, name]),
  deleteConsole: z.tuple([id, name]),
  powerAction: z.tuple([id, name, z.enum(['reset', 'shutdown', 'powerOff', 'powerOn', 'nmi'])]),
  listEndpoints: z.tuple([id]),
  createEndpoint: z.tuple([id, z.object({ name, ipAddress: z.string().max(64).optional(), allowedSourcePrefixes: z.array(z.string().max(64)).max(256).optional() }).strict()]),
  deleteEndpoint: z.tuple([id, name]),
  openConsole: z.union([z.tuple([id, name, kind]), z.tuple([id, name, kind, z.object({ replaceKey: z.string().regex(/^SHA256:[A-Za-z0-9+/]{1,64}$/).optional() }).strict()])]),
  reconnect: z.tuple([id]),
  reconnectWithNewKey: z.tuple([id]),
  closeTab: z.tuple([id]),
  resizeTerminal: z.tuple([id, z.number().int().min(1).max(1000), z.number().int().min(1).max(1000)]),
  sendBreak: z.union([z.tuple([id]), z.tuple([id, z.string().regex(/^[a-z0-9]$/, 'one SysRq letter or digit')])]),
  setAutoRenew: z.tuple([z.boolean()]),
  setTheme: z.tuple([z.enum(['system', 'light', 'dark'])]),
} satisfies Record<(typeof DESKTOP_API_METHODS)[number], z.ZodTypeAny>;

export class InvalidCallError extends Error {
  override name = 'InvalidCallError';
}

/** Validates a call from the renderer (method name, then arguments) and runs it. */
export async function dispatch(api: DesktopApi, method: unknown, args: unknown): Promise<unknown> {
  if (typeof method !== 'string' || !(DESKTOP_API_METHODS as readonly string[]).includes(method)) {
    throw new InvalidCallError(`unknown method ${JSON.stringify(String(method)).slice(0, 80)}`);
  }
  const schema = METHOD_ARGUMENTS[method as keyof typeof METHOD_ARGUMENTS];
  const parsed = schema.safeParse(args);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidCallError(`${method}: invalid argument ${issue?.path.join('.') || ''}: ${issue?.message ?? 'rejected'}`);
  }
  const call = api[method as keyof DesktopApi] as (...values: unknown[]) => Promise<unknown>;
  return call.apply(api, parsed.data as unknown[]);
}
