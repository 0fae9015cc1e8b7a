import { mkdirSync } from 'node:fs';
import { acquirePidLock } from '@lifeline/relay/client';
import { join } from 'node:path';

export class AlreadyRunningError extends Error {
  override name = 'AlreadyRunningError';
}

/**
 * One running app per data folder (Electron or browser mode): two would start two relays on one
 * SQLite file and one set of lab VMs. The lock is a file holding the owner's pid; a lock whose
 * owner is gone (or is no longer a Lifeline) is taken over. Returns the release function.
 */
export function acquireInstanceLock(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return acquirePidLock(join(dataDir, 'instance.lock'), {
    mode: 0o600,
    commandLine: /lifeline|dist-desktop|electron/i,
    held: (owner) => new AlreadyRunningError(`Lifeline is already running on ${dataDir} (pid ${owner}); use that window, or stop it first.`),
  });
}
