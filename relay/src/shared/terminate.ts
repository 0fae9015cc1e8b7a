import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The one way Lifeline stops a process: SIGTERM, then SIGKILL after `graceMs`. For a child of
 * this process, resolves when it has exited. For another process by pid, `stillOurs` says whether
 * the pid is still the process meant (its pid file or record, never a name: a pid may be reused);
 * resolves once it is not, or 2 s after the SIGKILL.
 */
export async function terminate(target: ChildProcess | { pid: number; stillOurs: () => boolean }, graceMs: number): Promise<void> {
  if ('kill' in target) {
    const child = target;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    return;
  }
  const { pid, stillOurs } = target;
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(pid, name);
    } catch {
      // Gone already.
    }
  };
  if (!stillOurs()) return;
  signal('SIGTERM');
  for (let waited = 0; waited < graceMs && stillOurs(); waited += 100) await sleep(100);
  if (!stillOurs()) return;
  signal('SIGKILL');
  for (let waited = 0; waited < 2000 && stillOurs(); waited += 50) await sleep(50);
}
