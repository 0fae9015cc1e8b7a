import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { terminate } from '@lifeline/relay/client';
import { RELAY_BIN } from './relay-bin.js';

/**
 * The processes the app starts outside its own (the embedded relay, `lab up`, the lab VMs) are
 * recorded in pid files under the embedded folder, with their arguments. Whatever a previous run
 * left (it was killed with -9, the machine lost power) is found from these files and stopped
 * before a new run starts its own: only a process whose command line still ends with the recorded
 * arguments, never one found by a name match.
 */

export interface NodeCommand {
  command: string;
  env: Record<string, string>;
}

interface ProcessRecord {
  pid: number;
  args: string[];
}

/** Writes `file`: this pid runs these arguments (after its executable). */
export function recordProcess(file: string, pid: number, args: readonly string[]): void {
  writeFileSync(file, `${JSON.stringify({ pid, args })}\n`, { mode: 0o600 });
}

/** The argv of a running process, or undefined when it is gone (or there is no /proc to ask). */
function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return undefined;
  }
}

/** The pid a record names, while that process still runs the recorded arguments. */
export function recordedPid(file: string): number | undefined {
  let record: ProcessRecord;
  try {
    record = JSON.parse(readFileSync(file, 'utf8')) as ProcessRecord;
  } catch {
    return undefined;
  }
  if (!Number.isInteger(record.pid) || record.pid <= 0 || !Array.isArray(record.args) || record.args.length === 0) return undefined;
  const argv = commandLine(record.pid);
  if (!argv || argv.length < record.args.length) return undefined;
  const tail = argv.slice(argv.length - record.args.length);
  return tail.every((arg, i) => arg === record.args[i]) ? record.pid : undefined;
}

/** Stops the recorded process (SIGTERM, SIGKILL after `graceMs`) and removes the record. True if it ran. */
export async function stopRecorded(file: string, graceMs = 10_000): Promise<boolean> {
  const pid = recordedPid(file);
  if (pid !== undefined) await terminate({ pid, stillOurs: () => recordedPid(file) === pid }, graceMs);
  rmSync(file, { force: true });
  return pid !== undefined;
}

/** Waits until the recorded process has exited, at most `ms`; true if it did (or was not running). */
export async function waitForRecorded(file: string, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    if (recordedPid(file) === undefined) return true;
    await sleep(100);
  }
  return recordedPid(file) === undefined;
}

/** Names of the lab VMs in `labDir` whose QEMU is still running, by their pid files (QEMU's own). */
function runningLabVms(labDir: string): string[] {
  if (!existsSync(labDir)) return [];
  return readdirSync(labDir)
    .filter((name) => /^lab-\d+$/.test(name))
    .filter((name) => {
      const pidFile = join(labDir, name, 'qemu.pid');
      try {
        const argv = commandLine(Number(readFileSync(pidFile, 'utf8').trim()));
        return Boolean(argv?.some((arg) => arg.includes('qemu-system')) && argv?.includes(pidFile));
      } catch {
        return false;
      }
    });
}

export const embeddedFiles = (dir: string) => ({
  relay: join(dir, 'relay.pid'),
  labUp: join(dir, 'lab-up.pid'),
  watchdog: join(dir, 'watchdog.pid'),
  lab: join(dir, 'lab'),
});

/**
 * Stops what an app run left in the embedded folder `dir`: a `lab up` still booting VMs, the
 * relay, then the lab VMs (`lab down`). Returns what it stopped, for the log; idempotent.
 */
export async function reapEmbedded(dir: string, node: NodeCommand): Promise<string[]> {
  const files = embeddedFiles(dir);
  const stopped: string[] = [];
  if (await stopRecorded(files.labUp, 5000)) stopped.push('a lab start');
  if (await stopRecorded(files.relay)) stopped.push('the embedded relay');
  const vms = runningLabVms(files.lab);
  if (vms.length > 0) {
    spawnSync(node.command, [RELAY_BIN, 'lab', 'down', '--dir', files.lab], { env: { ...process.env, ...node.env }, stdio: 'ignore', timeout: 60_000 });
    stopped.push(`the lab VMs ${vms.join(', ')}`);
  }
  return stopped;
}

/** The watchdog script, built next to this file's folder. */
const WATCHDOG = fileURLToPath(new URL('../watchdog.js', import.meta.url));

/**
 * Starts the watchdog: a small process in its own session that holds a pipe from this one.
 * When the pipe closes (this process ended, however: even kill -9), it stops what `dir` records.
 * A normal shutdown has stopped everything already, so it then finds nothing to do.
 */
export function startWatchdog(dir: string, node: NodeCommand): ChildProcess {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const child = spawn(node.command, [WATCHDOG, dir], {
    env: { ...process.env, ...node.env },
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  child.on('error', () => undefined);
  child.stdin!.on('error', () => undefined);
  if (child.pid !== undefined) recordProcess(embeddedFiles(dir).watchdog, child.pid, [WATCHDOG, dir]);
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return child;
}
