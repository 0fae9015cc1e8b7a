import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { generateKeyPair, type KeyPair } from '../services/ssh-keys.js';
import type { RelayApi } from '../services/relay-api.js';
import type { CliContext } from './context.js';
import { CLOSE_REASONS, CliError, closeCodeOfStatus, EXIT } from './errors.js';
import { privateRuntimeDir, startKeyAgent, type KeyAgent } from './key-agent.js';
import { checkHeldKey, consoleRefusal, consoleTarget, hostKeyAlias, knownHostsFile, pinHostKey, sshArguments } from './openssh.js';
import { sshBinary } from './tools.js';

export interface ConnectOptions {
  endpoint?: string;
  /** The user's own private key file instead of the keychain's key. */
  identity?: string;
  escapeChar?: string;
  replayLines?: number;
  /** Watch read-only, beside whoever has the console (it must allow observers). */
  observe?: boolean;
  /** false: no terminal (scripts, pipes): stdin to the console, its output to stdout. */
  tty: boolean;
  expect?: RegExp;
  timeoutMs?: number;
  ephemeral: boolean;
  /** For --ephemeral on a VM without a console: how long the console it creates lives. */
  ephemeralTtlMs: number;
}

/** How long the output is kept for --expect to match (the last so many characters). */
const EXPECT_WINDOW = 64 * 1024;

/**
 * A fresh key on the console for this connection only: the console is left as it was afterwards
 * (its old key put back, or the console deleted when there was none).
 */
async function ephemeralKey(api: RelayApi, vm: string, ttlMs: number): Promise<{ key: KeyPair; restore: () => Promise<void> }> {
  const key = generateKeyPair();
  const before = await api.console(vm);
  if (before) {
    const refusal = consoleRefusal(vm, before);
    if (refusal) throw new CliError(refusal);
    await api.patchConsole(vm, { sshPublicKey: { keyData: key.publicKey } });
    return { key, restore: async () => void (await api.patchConsole(vm, { sshPublicKey: { keyData: before.sshPublicKey.keyData } })) };
  }
  await api.putConsole(vm, { enabled: true, sshPublicKey: { keyData: key.publicKey }, expiration: new Date(Date.now() + ttlMs).toISOString() });
  return { key, restore: () => api.deleteConsole(vm) };
}

/** The relay's reason line in the output (`[lifeline] session closed: …`), the last one. */
function reasonLine(output: string): string | undefined {
  const all = [...output.matchAll(/\[lifeline\] session closed: ([^\r\n]+)/g)];
  return all.at(-1)?.[1];
}

/** Says on stderr why the relay closed the session, and returns the exit code for it. */
export function reportExit(status: number | null, vm: string, output = ''): number {
  if (status === null) return EXIT.error;
  const code = closeCodeOfStatus(status);
  if (code) {
    const { what, next } = CLOSE_REASONS[code];
    const fill = (text: string): string => text.replaceAll('{vm}', vm);
    process.stderr.write(`lifeline: the relay closed the session (${code}): ${reasonLine(output) ?? fill(what)}.${next ? ` To go on, ${fill(next)}.` : ''}\n`);
  }
  return status;
}

/**
 * `lifeline connect VM`: resolves the relay, endpoint, access id, host key and key, then runs
 * OpenSSH (raw mode, `~.`, window size and `~B` come from it). The key goes to `ssh` through a
 * private agent in this process, never a file. Returns the exit code.
 */
export async function connect(context: CliContext, vm: string, options: ConnectOptions): Promise<number> {
  const ssh = sshBinary();
  const { record, api } = await context.relay(vm);
  const pinned = pinHostKey(context, record, api);
  pinned.catch(() => undefined); // awaited below, after the console's checks that run meanwhile
  const runtime = privateRuntimeDir();
  const name = `connect-${process.pid}-${randomBytes(4).toString('hex')}`;
  let ephemeral: { key: KeyPair; restore: () => Promise<void> } | undefined;
  let agent: KeyAgent | undefined;
  let publicFile: string | undefined;
  try {
    if (options.ephemeral) ephemeral = await ephemeralKey(api, vm, options.ephemeralTtlMs);
    const target = await consoleTarget(api, record, vm, options.endpoint);
    await pinned;
    let identityFile = options.identity;
    if (!identityFile) {
      const key = ephemeral?.key ?? checkHeldKey(vm, target.console, await context.keys.own(record.id, vm));
      agent = await startKeyAgent(key.privateKey, join(runtime, `${name}.sock`));
      // The public half as IdentityFile: with IdentitiesOnly, ssh offers only that key of the agent.
      publicFile = join(runtime, `${name}.pub`);
      writeFileSync(publicFile, `${key.publicKey}\n`, { mode: 0o600 });
      identityFile = publicFile;
    }
    const args = sshArguments({
      target,
      alias: hostKeyAlias(record),
      knownHosts: knownHostsFile(context),
      identityFile,
      ...(agent && { agent: agent.path }),
      ...(options.escapeChar !== undefined && { escapeChar: options.escapeChar }),
      ...(options.replayLines !== undefined && { replayLines: options.replayLines }),
      ...(options.observe && { observe: true }),
      tty: options.tty,
    });
    return options.tty ? await runInteractive(ssh, args, vm) : await runScripted(ssh, args, vm, options);
  } finally {
    await agent?.close();
    if (publicFile) rmSync(publicFile, { force: true });
    if (ephemeral) {
      try {
        await ephemeral.restore();
      } catch (error) {
        process.stderr.write(`lifeline: the ephemeral key could not be taken off ${vm}'s console (${(error as Error).message}); its private half is gone, so nobody can use it. Put your key back with "lifeline console update ${vm} --key-file F.pub".\n`);
      }
    }
  }
}

/** Runs until `child` exits; signals that reach this process while it runs go to it (a terminal's Ctrl-C in raw mode goes nowhere). */
function exitOf(child: ChildProcess): Promise<number | null> {
  const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, forward);
  return new Promise<number | null>((resolve, reject) => {
    child.once('error', (error) => reject(new CliError(`Cannot run ssh: ${error.message}`)));
    child.once('exit', (code, signal) => resolve(code ?? (signal ? EXIT.interrupted : null)));
  }).finally(() => {
    for (const signal of signals) process.off(signal, forward);
  });
}

async function runInteractive(ssh: string, args: string[], vm: string): Promise<number> {
  const child = spawn(ssh, args, { stdio: 'inherit' });
  return reportExit(await exitOf(child), vm);
}

/**
 * No terminal: stdin goes to the console (its end does not end the session), the output to stdout.
 * With --expect, exit 0 once the output (escape sequences left out) matches, 3 at --timeout.
 * Without it, the session ends --timeout (default 1 s) after stdin ends.
 */
async function runScripted(ssh: string, args: string[], vm: string, options: ConnectOptions): Promise<number> {
  const child = spawn(ssh, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  let outcome: number | undefined;
  const finish = (code: number): void => {
    if (outcome !== undefined) return;
    outcome = code;
    child.kill('SIGTERM');
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    output = (output + chunk.toString('utf8')).slice(-EXPECT_WINDOW);
    if (options.expect?.test(stripVTControlCharacters(output))) finish(EXIT.ok);
  });
  const onInput = (chunk: Buffer): void => void child.stdin!.write(chunk);
  child.stdin!.on('error', () => undefined);
  process.stdin.on('data', onInput);
  let timer: NodeJS.Timeout | undefined;
  if (options.expect) {
    timer = setTimeout(() => {
      process.stderr.write(`lifeline: the output did not match ${options.expect} within ${(options.timeoutMs ?? 0) / 1000} s.\n`);
      finish(EXIT.expectTimeout);
    }, options.timeoutMs ?? 30_000);
  } else {
    process.stdin.once('end', () => (timer = setTimeout(() => finish(EXIT.ok), options.timeoutMs ?? 1000)));
  }
  try {
    const status = await exitOf(child);
    return outcome ?? reportExit(status, vm, output);
  } finally {
    clearTimeout(timer);
    process.stdin.off('data', onInput);
    process.stdin.pause();
  }
}

