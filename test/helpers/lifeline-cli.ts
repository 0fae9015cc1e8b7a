import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './relay-process.js';
import { waitUntil } from './wait.js';

/** The `lifeline` bin, as `npx lifeline` runs it in a checkout. */
export const LIFELINE_BIN = join(REPO_ROOT, 'scripts', 'lifeline.mjs');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running `lifeline` command: its output so far, its exit, a way to stop it (by its PID). */
export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv, input?: string): CliProcess {
  const child = spawn(process.execPath, [LIFELINE_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin!.on('error', () => undefined);
  if (input !== undefined) child.stdin!.end(input);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Runs `lifeline ARGS` to its end (killed after `timeoutMs`); stdin gets `input`, else ends at once. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv, input = '', timeoutMs = 60_000): Promise<CliRun> {
  const run = spawnCli(args, env, input);
  const timer = setTimeout(() => void run.stop('SIGKILL'), timeoutMs);
  const code = await run.exited;
  clearTimeout(timer);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Every regular file under `dir` whose content matches `pattern` (a secret left on disk). */
export function filesContaining(dir: string, pattern: RegExp): string[] {
  const found: string[] = [];
  const walk = (path: string): void => {
    let stat;
    try {
      stat = lstatSync(path);
    } catch {
      return;
    }
    if (stat.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
    else if (stat.isFile() && stat.size < 8 * 1024 * 1024 && pattern.test(readFileSync(path, 'latin1'))) found.push(path);
  };
  walk(dir);
  return found;
}

/** A tmux server of the test's own (its socket in `dir`): real terminals for interactive runs. Stopped by its PID. */
export class Tmux {
  private pid: number | undefined;

  constructor(
    private readonly socket: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8', env: this.env });
  }

  /** A window running `command` (a shell line) in a 120×30 terminal. */
  open(window: string, command: string): void {
    if (this.pid === undefined) {
      this.tmux('new-session', '-d', '-s', 'cli', '-n', window, '-x', '120', '-y', '30', command);
      this.pid = Number(this.tmux('display-message', '-p', '-t', 'cli', '#{pid}').trim());
      this.tmux('set-option', '-t', 'cli', 'remain-on-exit', 'on');
    } else {
      this.tmux('new-window', '-t', 'cli', '-n', window, command);
    }
  }

  /** Types `keys` (tmux key names: Enter, C-c; other words literally). */
  send(window: string, ...keys: string[]): void {
    this.tmux('send-keys', '-t', `cli:${window}`, ...keys);
  }

  /** Types `text` literally (no key names). */
  type(window: string, text: string): void {
    this.tmux('send-keys', '-t', `cli:${window}`, '-l', text);
  }

  pane(window: string): string {
    return this.tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', `cli:${window}`);
  }

  async waitFor(window: string, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    let text = '';
    try {
      await waitUntil(() => pattern.test((text = this.pane(window))), timeoutMs, `${pattern} in tmux window ${window}`);
    } catch (error) {
      throw new Error(`${(error as Error).message}; the window shows:\n${text}`, { cause: error });
    }
    return text;
  }

  stop(): void {
    if (this.pid === undefined) return;
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      // Gone already.
    }
    this.pid = undefined;
  }
}
