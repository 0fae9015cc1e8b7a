import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConsoleResource } from '@lifeline/relay/client';
import { fingerprintOfBlob, type KeyPair } from '../services/ssh-keys.js';
import type { RelayApi } from '../services/relay-api.js';
import type { RelayRecord } from '../services/settings.js';
import type { CliContext } from './context.js';
import { CliError } from './errors.js';

/** Where `lifeline` keeps the relays' pinned SSH host keys for OpenSSH (never the user's ~/.ssh/known_hosts). */
export const knownHostsFile = (context: CliContext): string => join(context.dataDir, 'cli', 'known_hosts');

/** The name OpenSSH checks a relay's host key under, whatever address its endpoint has. */
export const hostKeyAlias = (record: RelayRecord): string => `lifeline-${record.id}`;

/**
 * Writes the relay's SSH host key into the CLI's known-hosts file under its alias, after checking
 * it is the key pinned when the relay was added (as the desktop checks it on every connect).
 */
export async function pinHostKey(context: CliContext, record: RelayRecord, api: RelayApi): Promise<void> {
  const info = await api.info();
  const [type, base64] = (info.sshHostKeys[0]?.publicKey ?? '').split(' ');
  if (!type || !base64) throw new CliError(`The relay "${record.name}" did not report its SSH host key.`);
  const fingerprint = fingerprintOfBlob(Buffer.from(base64, 'base64'));
  if (fingerprint !== record.hostKeyFingerprint) {
    throw new CliError(
      `The relay "${record.name}" now presents the SSH host key ${fingerprint}, not the pinned ${record.hostKeyFingerprint}. ` +
        'Lifeline refuses it, as OpenSSH would. If the relay was reinstalled, remove it and add it again (lifeline relay remove, relay add).',
    );
  }
  const file = knownHostsFile(context);
  const alias = hostKeyAlias(record);
  let lines: string[] = [];
  try {
    lines = readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() && !line.startsWith(`${alias} `));
  } catch {
    // A first one.
  }
  lines.push(`${alias} ${type} ${base64}`);
  mkdirSync(join(context.dataDir, 'cli'), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${lines.join('\n')}\n`, { mode: 0o644 });
  renameSync(temporary, file);
}

/** Where and as whom to reach a VM's console over SSH. */
export interface ConsoleTarget {
  vm: string;
  host: string;
  port: number;
  /** The console's access id: the SSH user name. */
  user: string;
  console: ConsoleResource;
}

/** The console's state as a refusal that says what to do, or undefined when it admits sessions. */
export function consoleRefusal(vm: string, console: ConsoleResource | undefined): string | undefined {
  if (!console) return `${vm} has no console: create one with "lifeline console create ${vm} --generate".`;
  if (console.detailedStatus === 'Disabled') return `The console of ${vm} is disabled: enable it with "lifeline console update ${vm} --enabled true".`;
  if (console.detailedStatus === 'Expired') return `The console of ${vm} expired at ${console.expiration}: renew it with "lifeline console update ${vm} --expires-in 24h".`;
  return undefined;
}

/** The endpoint (the relay's chosen one, or `endpoint`) and the console of `vm`, ready to connect to. */
export async function consoleTarget(api: RelayApi, record: RelayRecord, vm: string, endpoint?: string): Promise<ConsoleTarget> {
  // At once: an unknown VM answers with the relay's VirtualMachineNotFound either way.
  const [, console, endpoints] = await Promise.all([api.virtualMachine(vm), api.console(vm), api.endpoints()]);
  const refusal = consoleRefusal(vm, console);
  if (refusal || !console) throw new CliError(refusal ?? `${vm} has no console.`);
  const name = endpoint ?? record.endpoint;
  const found = endpoints.find((e) => e.name === name);
  if (!found) throw new CliError(`The relay "${record.name}" has no private endpoint "${name}": see "lifeline endpoints list".`);
  return { vm, host: found.advertiseAddress ?? found.ipAddress, port: found.sshPort, user: console.virtualMachineAccessId, console };
}

/** The key this user holds for the console in the keychain, checked against the console's. */
export function checkHeldKey(vm: string, console: ConsoleResource, key: KeyPair | undefined): KeyPair {
  if (!key) throw new CliError(`No key for ${vm}'s console in the keychain. Use --ephemeral, --identity FILE (your own key), or give the console a new one: lifeline console update ${vm} --generate`);
  if (key.fingerprint !== console.keyFingerprint) {
    throw new CliError(`The console of ${vm} holds another key (${console.keyFingerprint}), not the one in your keychain (${key.fingerprint}). Use --ephemeral, --identity FILE, or replace it: lifeline console update ${vm} --generate`);
  }
  return key;
}

/** A stable, short name per relay and VM (socket and key file names). */
export const slug = (record: RelayRecord, vm: string): string => createHash('sha256').update(`${record.id}\u0000${vm}`).digest('hex').slice(0, 16);

export interface SshCommandOptions {
  target: { host: string; port: number; user: string };
  alias: string;
  knownHosts: string;
  /** A public key file whose private half is in `agent`, or the user's own private key file. */
  identityFile: string;
  agent?: string;
  escapeChar?: string;
  replayLines?: number;
  tty: boolean;
  /** Join read-only (the relay's `observe` command) instead of taking the console. */
  observe?: boolean;
}

/** OpenSSH's arguments for a console: only this key, only this host key, no forwarding, publickey only. */
export function sshArguments(options: SshCommandOptions): string[] {
  const o = (setting: string): string[] => ['-o', setting];
  return [
    ...o(`HostKeyAlias=${options.alias}`),
    ...o(`UserKnownHostsFile=${options.knownHosts}`),
    ...o('GlobalKnownHostsFile=/dev/null'),
    ...o('StrictHostKeyChecking=yes'),
    ...o('CheckHostIP=no'),
    ...o('UpdateHostKeys=no'),
    ...o('IdentitiesOnly=yes'),
    ...o(`IdentityAgent=${options.agent ?? 'none'}`),
    ...o('PreferredAuthentications=publickey'),
    ...o('ForwardAgent=no'),
    ...o('ForwardX11=no'),
    ...o('ClearAllForwardings=yes'),
    ...o('ControlMaster=no'),
    ...o('ControlPath=none'),
    '-i',
    options.identityFile,
    ...(options.escapeChar !== undefined ? ['-e', options.escapeChar] : []),
    ...(options.replayLines !== undefined ? o(`SetEnv=LIFELINE_REPLAY=${options.replayLines}`) : []),
    ...(options.tty ? ['-t'] : ['-T', ...o('BatchMode=yes')]),
    '-p',
    String(options.target.port),
    '-l',
    options.target.user,
    options.target.host,
    ...(options.observe ? ['observe'] : []),
  ];
}

/** OpenSSH's `-e`: one character, `^X` for a control key, or `none`. */
export function parseEscapeChar(value: string): string {
  if (value === 'none' || [...value].length === 1 || /^\^[@-_a-z?]$/.test(value)) return value;
  throw new CliError(`--escape-char must be one character, ^X for a control key (e.g. ^A on keyboards without ~), or none; not "${value}"`, 2);
}
