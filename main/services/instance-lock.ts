import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class AlreadyRunningError extends Error {
  override name = 'AlreadyRunningError';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** On Linux, whether `pid` is still a Lifeline (a recycled pid belonging to something else is not). */
function isLifeline(pid: number): boolean {
  try {
    return /lifeline|dist-desktop|electron/i.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return process.platform !== 'linux'; // no /proc to ask: trust that the pid is alive
  }
}

/**
 * One running app per data folder (Electron or browser mode): two would start two relays on one
 * SQLite file and one set of lab VMs. The lock is a file holding the owner's pid; a lock whose
 * owner is gone (or is no longer a Lifeline) is taken over. Returns the release function.
 */
export function acquireInstanceLock(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, 'instance.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          if (Number(readFileSync(path, 'utf8').trim()) === process.pid) rmSync(path);
        } catch {
          // Already gone.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
      if (owner === process.pid || (Number.isInteger(owner) && alive(owner) && isLifeline(owner))) {
        throw new AlreadyRunningError(`Lifeline is already running on ${dataDir} (pid ${owner}); use that window, or stop it first.`);
      }
      rmSync(path, { force: true }); // left by a run that did not clean up
    }
  }
  throw new AlreadyRunningError(`cannot take the lock ${path}`);
}
