import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitUntil } from './wait.js';

export interface KeyPair {
  privateKeyPath: string;
  publicKey: string;
}

/** A real key made by `ssh-keygen`, as a user would make it. */
export function generateKey(dir: string, name: string, type: 'ed25519' | 'rsa' | 'ecdsa' = 'ed25519', bits?: number): KeyPair {
  const privateKeyPath = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `${name}@test`, '-f', privateKeyPath]);
  return { privateKeyPath, publicKey: readFileSync(`${privateKeyPath}.pub`, 'utf8').trim() };
}

/** OpenSSH client options for a non-interactive run against a throwaway server: no config, no prompts, no host-key memory. */
export const OPENSSH_BATCH_OPTIONS = ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'IdentitiesOnly=yes'];

/** `ssh -N -L 127.0.0.1:<localPort>:<destination> <user>@127.0.0.1 -p <port>`, exiting if the forward cannot be set up. */
export function spawnLocalForward(options: { port: number; user: string; key: string; localPort: number; destination: string }): ChildProcess {
  return spawn('ssh', [...OPENSSH_BATCH_OPTIONS, '-o', 'ExitOnForwardFailure=yes', '-i', options.key, '-p', String(options.port), '-N', '-L', `127.0.0.1:${options.localPort}:${options.destination}`, `${options.user}@127.0.0.1`], { stdio: 'ignore' });
}

export interface SshOptions {
  port: number;
  user: string;
  key?: string;
  host?: string;
  /** Source address to bind (`ssh -b`). */
  bindAddress?: string;
  /** OpenSSH's LogLevel (default ERROR; INFO shows the server's banners, as a user's ssh does). */
  logLevel?: string;
  extra?: string[];
  /** The remote command, after the destination (`observe`). */
  command?: string[];
}

/** An interactive OpenSSH client session (`ssh -tt`), its output collected as text. */
export class OpenSshSession {
  readonly child: ChildProcess;
  private text = '';
  readonly exited: Promise<number | null>;

  constructor(options: SshOptions) {
    const args = [
      '-tt',
      '-F', '/dev/null',
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null',
      '-o', `LogLevel=${options.logLevel ?? 'ERROR'}`,
      '-o', 'ConnectTimeout=10',
      ...(options.key ? ['-o', 'IdentitiesOnly=yes', '-i', options.key] : ['-o', 'PubkeyAuthentication=no']),
      ...(options.bindAddress ? ['-b', options.bindAddress] : []),
      ...(options.extra ?? []),
      '-p', String(options.port),
      `${options.user}@${options.host ?? '127.0.0.1'}`,
      ...(options.command ?? []),
    ];
    this.child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.text += chunk.toString('latin1')));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.text += chunk.toString('latin1')));
    this.child.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get output(): string {
    return this.text;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  send(text: string): void {
    this.child.stdin!.write(text);
  }

  /** Waits until the output (from `from` on) matches `pattern`. */
  async waitFor(pattern: RegExp | string, timeoutMs = 15_000, from = 0): Promise<void> {
    const test = (): boolean => {
      const tail = this.text.slice(from);
      return typeof pattern === 'string' ? tail.includes(pattern) : pattern.test(tail);
    };
    try {
      await waitUntil(test, timeoutMs, `ssh output matching ${String(pattern)}`);
    } catch (error) {
      throw new Error(`${(error as Error).message}; output so far:\n${JSON.stringify(this.text.slice(-2000))}`, { cause: error });
    }
  }

  /**
   * Types `marker` until it comes back (a console stand-in that echoes): the session reaches the VM.
   * Retyped every 150 ms, since what is typed before the session is attached is not delivered.
   */
  async echo(marker: string, timeoutMs = 15_000): Promise<void> {
    try {
      await waitUntil(
        async () => {
          this.send(marker);
          await new Promise((resolve) => setTimeout(resolve, 150));
          return this.text.includes(marker);
        },
        timeoutMs,
        `${marker} echoed`,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; ssh said ${JSON.stringify(this.text.slice(-500))}`, { cause: error });
    }
  }

  /** Runs a shell command on the serial console and waits for `expect` in the output after it. */
  async run(command: string, expect: RegExp | string, timeoutMs = 15_000): Promise<void> {
    const from = this.text.length;
    this.send(`${command}\r`);
    await this.waitFor(expect, timeoutMs, from);
  }

  close(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

/** Runs `ssh` to completion (for refusals) and returns its exit code and output. */
export async function sshOnce(options: SshOptions, timeoutMs = 15_000): Promise<{ code: number | null; output: string }> {
  const session = new OpenSshSession(options);
  session.child.stdin!.end();
  const timer = setTimeout(() => session.close(), timeoutMs);
  const code = await session.exited;
  clearTimeout(timer);
  return { code, output: session.output };
}
