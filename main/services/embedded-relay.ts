import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import which from 'which';
import { isRelayReadyMessage, newApiToken, terminate } from '@lifeline/relay/client';
import type { EmbeddedStatus } from '../../preload/contract.js';
import { embeddedFiles, recordProcess } from './leftovers.js';
import { RELAY_BIN } from './relay-bin.js';

/**
 * The admin token a user's relay wrote on its first start (`<dataDir>/admin.token`), read from its
 * config; undefined when there is none to read.
 */
export function adminTokenOfConfig(configPath: string): string | undefined {
  try {
    const config = parseYaml(readFileSync(configPath, 'utf8')) as { dataDir?: unknown } | null;
    const dataDir = typeof config?.dataDir === 'string' ? config.dataDir : './lifeline-data';
    const dir = isAbsolute(dataDir) ? dataDir : resolve(dirname(configPath), dataDir);
    return readFileSync(join(dir, 'admin.token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}


export interface EmbeddedRelayOptions {
  /** Folder for the lab VMs and the relay's data (the app's userData). */
  dir: string;
  /** Run the relay on this config instead of lab VMs. */
  relayConfig?: string;
  /**
   * The admin token to start the lab relay with (kept in the keychain by the caller). Not used
   * with `relayConfig`: a relay of the user's keeps its own admin token.
   */
  adminToken: string;
  /**
   * The lab relay's SSH host key (OpenSSH private key), given through the environment so it is
   * never written: without an OS keychain nothing secret goes to disk. Unset: the relay keeps its
   * own in its data folder.
   */
  hostKey?: string;
  onStatus: (status: EmbeddedStatus) => void;
  /** How to run Node scripts: `process.execPath`, with ELECTRON_RUN_AS_NODE under Electron. */
  node?: { command: string; env: Record<string, string> };
}

/** A new admin token for the embedded relay, in the relay's own token format. */
export function newAdminToken(): string {
  return newApiToken();
}

/** Whether a command is on PATH (no shell: the name is never interpreted). */
function have(command: string): boolean {
  return which.sync(command, { nothrow: true }) !== null;
}

/**
 * Starts and stops the relay the app runs on the user's own machine: on the given config, or
 * on two lab VMs when QEMU is installed. Reports progress through `onStatus`.
 */
export class EmbeddedRelay {
  private child: ChildProcess | undefined;
  private labChild: ChildProcess | undefined;
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
    mkdirSync(this.options.dir, { recursive: true });
    const args = [RELAY_BIN, 'lab', 'up', '--vms', '2', '--dir', dir];
    const record = embeddedFiles(this.options.dir).labUp;
    return new Promise((resolvePath, reject) => {
      // Its own process group: a terminal's Ctrl-C or hang-up reaches the app, which stops it in order.
      const child = spawn(this.node.command, args, {
        env: { ...process.env, ...this.node.env },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      if (child.pid !== undefined) recordProcess(record, child.pid, args);
      this.labChild = child;
      let out = '';
      let err = '';
      child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => {
        err += chunk.toString();
        const line = chunk.toString().trim().split('\n').pop();
        if (line) this.options.onStatus({ state: 'starting', message: line.replace(/^lab: /, 'Lab: ') });
      });
      child.once('error', reject);
      child.once('exit', (code) => {
        this.labChild = undefined;
        rmSync(record, { force: true });
        if (code !== 0) return reject(new Error(err.trim().split('\n').pop() ?? `lab up exited with ${code}`));
        try {
          // The lab's config uses fixed ports; the embedded relay takes free ones so it never collides.
          const labConfig = parseYaml(readFileSync(out.trim(), 'utf8')) as Record<string, unknown>;
          const config = { ...labConfig, dataDir: join(dir, 'data'), api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 } };
          const path = join(dir, 'embedded-relay.json');
          writeFileSync(path, JSON.stringify(config, null, 2));
          resolvePath(path);
        } catch (error) {
          reject(new Error(`lab up wrote no usable config: ${(error as Error).message}`));
        }
      });
    });
  }

  private serve(configPath: string): Promise<string> {
    mkdirSync(this.options.dir, { recursive: true });
    // The lab relay runs on the app's token; a relay of the user's (relayConfig) keeps its own.
    const token = this.options.relayConfig ? {} : { LIFELINE_ADMIN_TOKEN: this.options.adminToken, ...(this.options.hostKey && { LIFELINE_SSH_HOST_KEY: this.options.hostKey }) };
    const args = [RELAY_BIN, 'serve', '--config', configPath];
    // Its own process group: a terminal's Ctrl-C or hang-up reaches the app, which stops the relay in order.
    const child = spawn(this.node.command, args, {
      env: { ...process.env, ...this.node.env, ...token },
      // An IPC channel: the relay says it is ready, and where, as a message (RelayReadyMessage).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    this.child = child;
    const record = embeddedFiles(this.options.dir).relay;
    if (child.pid !== undefined) recordProcess(record, child.pid, args);
    const log = join(this.options.dir, 'relay.log');
    // A stream, not a write per chunk: a full disk is an error event here, not an exception in a data handler.
    const logFile = createWriteStream(log);
    logFile.on('error', () => undefined);
    child.once('exit', () => logFile.end());
    return new Promise((resolveUrl, reject) => {
      let pending = '';
      let ready = false;
      child.once('error', (error) => reject(new Error(`the embedded relay could not start: ${error.message}`)));
      child.on('message', (message: unknown) => {
        if (ready) return;
        ready = true;
        child.disconnect(); // nothing more to hear
        if (isRelayReadyMessage(message)) resolveUrl(message.api);
        else reject(new Error(`the embedded relay sent an unreadable ready message: ${JSON.stringify(message).slice(0, 200)}`));
      });
      child.stdout!.on('data', (chunk: Buffer) => {
        logFile.write(chunk);
        if (!ready) pending += chunk.toString();
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        logFile.write(chunk);
        pending += chunk.toString();
      });
      child.once('exit', (code) => {
        this.child = undefined;
        rmSync(record, { force: true });
        if (!ready) reject(new Error(`the embedded relay did not start: ${pending.trim().split('\n').pop() ?? code}`));
        else this.options.onStatus({ state: 'stopped', message: `The embedded relay stopped (exit ${code}); see ${log}` });
      });
    });
  }

  /** Stops the relay (its sessions get a reason line) and the lab VMs. Idempotent. */
  async stop(): Promise<void> {
    // A lab still booting VMs first (lab down below stops the ones it started), then the relay.
    if (this.labChild) await terminate(this.labChild, 5000);
    if (this.child) await terminate(this.child, 10_000);
    if (this.labDir) {
      spawnSync(this.node.command, [RELAY_BIN, 'lab', 'down', '--dir', this.labDir], { env: { ...process.env, ...this.node.env }, stdio: 'ignore' });
      this.labDir = undefined;
    }
  }
}
