import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RELAY_BIN = join(REPO_ROOT, 'relay', 'bin', 'lifeline-relay.js');

export interface RelayProcess {
  apiUrl: string;
  token: string;
  sshPort: number;
  child: ChildProcess;
  configPath: string;
  dataDir: string;
  /** Everything the relay printed so far. */
  output(): string;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  /** Sends `signal` and resolves with the exit code. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A relay config of its own in `dir` (`<name>.json`, data in `<name>-data`) on ephemeral ports, `settings` on top. */
export function ephemeralConfig(dir: string, name: string, settings: Record<string, unknown>): { configPath: string; dataDir: string } {
  const dataDir = join(dir, `${name}-data`);
  const configPath = join(dir, `${name}.json`);
  writeFileSync(configPath, JSON.stringify({ dataDir, api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, ...settings }));
  return { configPath, dataDir };
}

/** Rewrites a lab config for a test: its own data folder and ephemeral ports, plus any overrides. */
export function testConfig(
  labConfigPath: string,
  dataDir: string,
  overrides: Record<string, unknown> = {},
  mapVm: (vm: Record<string, any>) => Record<string, any> = (vm) => vm,
): string {
  const config = parseYaml(readFileSync(labConfigPath, 'utf8')) as Record<string, any>;
  const labDir = join(labConfigPath, '..');
  // Socket paths become absolute; `serial` may be a path or { path, protocol }.
  const absolute = (value: any): any => (typeof value === 'string' ? join(labDir, value) : { ...value, path: join(labDir, value.path) });
  config.virtualMachines = (config.virtualMachines as Array<Record<string, any>>).map((vm) =>
    mapVm(Object.fromEntries(Object.entries(vm).map(([key, value]) => [key, key === 'name' ? value : absolute(value)]))),
  );
  const merged = { ...config, dataDir, api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, ...overrides };
  const path = join(dataDir, '..', `relay-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.json`);
  writeFileSync(path, JSON.stringify(merged, null, 2));
  return path;
}

/**
 * Runs the built `lifeline-relay serve` as a user would and waits for its "relay ready" log line.
 * `wrapper` runs it under a command that execs it (`prlimit --nofile=300:300`), so the pid is the relay's.
 */
export async function startRelay(configPath: string, dataDir: string, env: Record<string, string> = {}, nodeArgs: string[] = [], bin = RELAY_BIN, wrapper: string[] = []): Promise<RelayProcess> {
  const command = [...wrapper, process.execPath, ...nodeArgs, bin, 'serve', '--config', configPath];
  const child = spawn(command[0]!, command.slice(1), {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await new Promise<Record<string, any>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not become ready in 20 s:\n${output}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      for (const line of output.split('\n')) {
        if (!line.includes('"relay ready"')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, any>);
        return;
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code} before it was ready:\n${output}`));
    });
  });
  const token = env.LIFELINE_ADMIN_TOKEN ?? readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const apiUrl = ready.api as string;
  let stopping: Promise<number | null> | undefined;
  // A relay that exits on its own with an error (not stopped, not killed by a signal) is a crash: its last words go to the test's output.
  child.once('exit', (code) => {
    if (!stopping && code !== null && code !== 0) console.error(`relay ${configPath} exited with ${code} on its own; its output ended:\n${output.slice(-6000)}`);
  });
  return {
    apiUrl,
    token,
    sshPort: (ready.endpoints as Array<{ name: string; sshPort: number }>).find((e) => e.name === 'default')!.sshPort,
    child,
    configPath,
    dataDir,
    output: () => output,
    async api(method, path, body, headers = {}) {
      const response = await fetch(`${apiUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      // JSON answers parsed; anything else (GET /metrics) as its text.
      const json = (response.headers.get('content-type') ?? '').includes('json');
      return { status: response.status, body: text ? (json ? JSON.parse(text) : text) : undefined };
    },
    stop(signal = 'SIGTERM') {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      })();
      return stopping;
    },
  };
}
