import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { processAlive } from '../core/process-alive.js';

/** Whether `pid` is alive and (where /proc tells) runs a command line matching `commandLine`, so that a reused pid holds nothing. */
function holds(pid: number, commandLine: RegExp): boolean {
  if (pid === process.pid) return true;
  if (!processAlive(pid)) return false;
  try {
    return commandLine.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch (error) {
    // No /proc (macOS): alive is all there is to know. With /proc, a vanished entry means the process just exited.
    return (error as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync('/proc/self');
  }
}

export interface PidLockOptions {
  /** The lock file's mode. */
  mode: number;
  /** What the holder's command line must match to count as a holder. */
  commandLine: RegExp;
  /** The error for a lock held by `pid` (this very process when `pid === process.pid`). */
  held: (pid: number) => Error;
}

/**
 * A lock file holding its owner's pid, made exclusively (`wx`). A lock whose owner is gone, or
 * whose pid now belongs to something else, is taken over. Returns the release function, which
 * removes the file only while it is still this process's. The relay's data folder and the
 * desktop's instance lock are both this.
 */
export function acquirePidLock(file: string, options: PidLockOptions): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', options.mode);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file);
        } catch {
          // Already gone.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    if (Number.isInteger(holder) && holder > 0 && holds(holder, options.commandLine)) throw options.held(holder);
    rmSync(file, { force: true }); // left by a process that died
  }
  throw new Error(`cannot take the lock ${file}: it keeps reappearing`);
}
