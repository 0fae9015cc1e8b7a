import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from './core/process-alive.js';

/**
 * Whether `pid` is a live relay: alive, and (where /proc tells) a process whose command line
 * names lifeline, so that a pid reused after a reboot does not keep the folder locked.
 */
function holderIsRelay(pid: number): boolean {
  if (pid === process.pid) return true;
  if (!processAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('lifeline');
  } catch (error) {
    // No /proc (macOS): alive is all there is to know.
    return (error as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync('/proc/self');
  }
}

/**
 * One relay per data folder: `<dataDir>/relay.pid`, made exclusively. Two relays writing the
 * same audit trail would fork its hash chain; a pid file left by a relay that died is taken over.
 * Returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'relay.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
      return () => {
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
        } catch {
          // Already gone.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(holder) && holder > 0 && holderIsRelay(holder)) {
      const who = holder === process.pid ? 'another relay in this process' : `another relay (pid ${holder})`;
      throw new Error(`${who} is running on the data folder ${dataDir}; stop it first, or give this one its own dataDir`);
    }
    unlinkSync(file); // left by a relay that died
  }
  throw new Error(`cannot lock the data folder ${dataDir} (${file} keeps reappearing)`);
}
