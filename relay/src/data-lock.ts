import { join } from 'node:path';
import { acquirePidLock } from './shared/pid-lock.js';

/**
 * One relay per data folder: `<dataDir>/relay.pid`, made exclusively. Two relays writing the
 * same audit trail would fork its hash chain; a pid file left by a relay that died is taken over.
 * Returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  return acquirePidLock(join(dataDir, 'relay.pid'), {
    mode: 0o644,
    commandLine: /lifeline/,
    held: (holder) => {
      const who = holder === process.pid ? 'another relay in this process' : `another relay (pid ${holder})`;
      return new Error(`${who} is running on the data folder ${dataDir}; stop it first, or give this one its own dataDir`);
    },
  });
}
