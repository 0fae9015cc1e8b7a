import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** One fenced block of a Markdown file: its info string (`sh`, `json`, '' …), its first line number and its text. */
export interface FencedBlock {
  file: string;
  line: number;
  info: string;
  text: string;
}

/** A command of a `sh` block: backslash-continued lines joined, blank and comment-only lines dropped. */
export interface DocCommand {
  block: FencedBlock;
  /** 1-based line in the file where the command starts. */
  line: number;
  text: string;
  /** The example reply the docs print after this command (the json block that follows its block), if any. */
  reply?: FencedBlock;
}

export function fencedBlocks(file: string, markdown = readFileSync(file, 'utf8')): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    blocks.push({ file, line: start + 1, info: open[1]!, text: body.join('\n') });
  }
  return blocks;
}

/** The commands of every `sh` block, in order; the last command of a block gets the json block right after it as its reply. */
export function docCommands(blocks: readonly FencedBlock[], markdown: string): DocCommand[] {
  const lines = markdown.split('\n');
  const commands: DocCommand[] = [];
  blocks.forEach((block, index) => {
    if (block.info !== 'sh') return;
    const body = block.text.split('\n');
    const ofBlock: DocCommand[] = [];
    for (let i = 0; i < body.length; i++) {
      const start = i;
      let text = body[i]!;
      while (text.endsWith('\\') && i + 1 < body.length) text = `${text.slice(0, -1)}${body[++i]!.trimStart()}`;
      if (text.trim() === '' || text.trimStart().startsWith('#')) continue;
      ofBlock.push({ block, line: block.line + 1 + start, text: text.trim() });
    }
    const next = blocks[index + 1];
    const blockEnd = block.line + body.length + 1; // the closing fence
    const between = next ? lines.slice(blockEnd, next.line - 1) : [];
    if (next?.info === 'json' && between.every((l) => l.trim() === '') && ofBlock.length > 0) ofBlock.at(-1)!.reply = next;
    commands.push(...ofBlock);
  });
  return commands;
}

/** The object keys a documented JSON example shows (it may hold `…` placeholders, so it is not parsed). */
export function documentedKeys(example: string): string[] {
  return [...new Set([...example.matchAll(/"([A-Za-z_][A-Za-z0-9_]*)"\s*:/g)].map((m) => m[1]!))];
}

/** Every object key anywhere in a parsed JSON value. */
export function jsonKeys(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) jsonKeys(item, into);
  else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      into.add(key);
      jsonKeys(inner, into);
    }
  }
  return into;
}

export interface ShellResult {
  status: number;
  stdout: string;
  stderr: string;
}

const MARK = '__lifeline_docs_done__';

/**
 * A reader's terminal: one bash that keeps its variables and background jobs between commands,
 * as a person typing the docs' lines one after another. `argv` is how to start it (e.g. inside a
 * network namespace). It runs in its own process group, so `close` stops its jobs too (by PID).
 */
export class ReaderShell {
  private readonly child: ChildProcess;
  private stdout = '';
  private stderr = '';
  private waiter: (() => void) | undefined;
  private exited = false;

  constructor(argv: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
    this.child = spawn(argv[0]!, [...argv.slice(1), 'bash', '--noprofile', '--norc'], { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
      this.waiter?.();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
      this.waiter?.();
    });
    this.child.once('exit', () => {
      this.exited = true;
      this.waiter?.();
    });
  }

  /** Runs one command line (stdin from /dev/null, so it cannot eat the lines after it) and returns its status and output. */
  async run(command: string, timeoutMs = 60_000): Promise<ShellResult> {
    this.stdout = '';
    this.stderr = '';
    this.child.stdin!.write(`{ ${command}\n} </dev/null\nprintf '\\n${MARK} %s\\n' "$?"; printf '\\n${MARK}\\n' >&2\n`);
    const deadline = Date.now() + timeoutMs;
    const done = new RegExp(`\\n${MARK} (\\d+)\\n`);
    for (;;) {
      const status = done.exec(this.stdout);
      if (status && this.stderr.includes(`\n${MARK}\n`)) {
        return {
          status: Number(status[1]),
          stdout: this.stdout.slice(0, status.index),
          stderr: this.stderr.slice(0, this.stderr.indexOf(`\n${MARK}\n`)),
        };
      }
      if (this.exited) throw new Error(`the shell exited while running: ${command}\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`no end within ${timeoutMs} ms of: ${command}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** Stops the shell and every job it started (its process group). */
  async close(): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      process.kill(-this.child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-this.child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, 3000);
    await gone;
    clearTimeout(timer);
  }
}
