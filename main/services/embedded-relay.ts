import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { EmbeddedStatus } from '../../preload/contract.js';

/** The relay's command-line entry, shipped inside the app. */
export const RELAY_BIN = join(dirname(createRequire(import.meta.url).resolve('@lifeline/relay/package.json')), 'bin', 'lifeline-relay.js');

export interface EmbeddedRelayOptions {
  /** Folder for the lab VMs and the relay's data (the app's userData). */
  dir: string;
  /** Run the relay on this config instead of lab VMs. */
  relayConfig?: string;
  /** The admin token to start the relay with (kept in the keychain by the caller). */
  adminToken: string;
  onStatus: (status: EmbeddedStatus) => void;
  /** How to run Node scripts: `process.execPath`, with ELECTRON_RUN_AS_NODE under Electron. */
  node?: { command: string; env: Record<string, string> };
}

export function newAdminToken(): string {
  return `llt_${randomBytes(32).toString('base64url')}`;
}

function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

/**
 * Starts and stops the relay the app runs on the user's own machine: on the given config, or
 * on two lab VMs when QEMU is installed. Reports progress through `onStatus`.
 */
export class EmbeddedRelay {
  private child: ChildProcess | undefined;
  private labDir: string | undefined;
  apiUrl: string | undefined;

  constructor(private readonly options: EmbeddedRelayOptions) {}

  private get node(): { command: string; env: Record<string, string> } {
    return this.options.node ?? { command: process.execPath, env: {} };
  }

  /** Resolves with the API URL, or undefined when there is nothing to run (status says why). */
  async start(): Promise<string | undefined> {
    const { onStatus } = this.options;
    let configPath = this.options.relayConfig && resolve(this.options.relayConfig);
    if (!configPath) {
      if (!have('qemu-system-x86_64')) {
        onStatus({
          state: 'unavailable',
          message: 'No embedded relay: QEMU is not installed. Install it for two demo VMs (sudo apt-get install qemu-system-x86 busybox-static), or add a remote relay.',
        });
        return undefined;
      }
      this.labDir = join(this.options.dir, 'lab');
      onStatus({ state: 'starting', message: 'Preparing the lab VMs (the first time downloads a kernel; about a minute)…' });
      configPath = await this.labUp(this.labDir);
    }
    onStatus({ state: 'starting', message: 'Starting the embedded relay…' });
    this.apiUrl = await this.serve(configPath);
    onStatus({ state: 'running', message: `Embedded relay running at ${this.apiUrl}` });
    return this.apiUrl;
  }

  private labUp(dir: string): Promise<string> {
    return new Promise((resolvePath, reject) => {
      const child = spawn(this.node.command, [RELAY_BIN, 'lab', 'up', '--vms', '2', '--dir', dir], {
        env: { ...process.env, ...this.node.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => {
        err += chunk.toString();
        const line = chunk.toString().trim().split('\n').pop();
        if (line) this.options.onStatus({ state: 'starting', message: line.replace(/^lab: /, 'Lab: ') });
      });
      child.once('exit', (code) => {
        if (code !== 0) return reject(new Error(err.trim().split('\n').pop() ?? `lab up exited with ${code}`));
        // The lab's config uses fixed ports; the embedded relay takes free ones so it never collides.
        const labConfig = parseYaml(readFileSync(out.trim(), 'utf8')) as Record<string, unknown>;
        const config = { ...labConfig, dataDir: join(dir, 'data'), api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 } };
        const path = join(dir, 'embedded-relay.json');
        writeFileSync(path, JSON.stringify(config, null, 2));
        resolvePath(path);
      });
    });
  }

  private serve(configPath: string): Promise<string> {
    mkdirSync(this.options.dir, { recursive: true });
    const child = spawn(this.node.command, [RELAY_BIN, 'serve', '--config', configPath], {
      env: { ...process.env, ...this.node.env, LIFELINE_ADMIN_TOKEN: this.options.adminToken },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const log = join(this.options.dir, 'relay.log');
    writeFileSync(log, '');
    return new Promise((resolveUrl, reject) => {
      let pending = '';
      let ready = false;
      child.stdout!.on('data', (chunk: Buffer) => {
        writeFileSync(log, chunk, { flag: 'a' });
        if (ready) return;
        pending += chunk.toString();
        const line = pending.split('\n').find((l) => l.includes('"relay ready"'));
        if (line) {
          ready = true;
          resolveUrl((JSON.parse(line) as { api: string }).api);
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        writeFileSync(log, chunk, { flag: 'a' });
        pending += chunk.toString();
      });
      child.once('exit', (code) => {
        this.child = undefined;
        if (!ready) reject(new Error(`the embedded relay did not start: ${pending.trim().split('\n').pop() ?? code}`));
        else this.options.onStatus({ state: 'stopped', message: `The embedded relay stopped (exit ${code}); see ${log}` });
      });
    });
  }

  /** Stops the relay (its sessions get a reason line) and the lab VMs. Idempotent. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child) {
      const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.labDir) {
      spawnSync(this.node.command, [RELAY_BIN, 'lab', 'down', '--dir', this.labDir], { env: { ...process.env, ...this.node.env }, stdio: 'ignore' });
      this.labDir = undefined;
    }
  }
}
