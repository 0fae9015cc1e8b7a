import { chmodSync, lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';

/*
 * OpenSSH's StrictModes for the relay's data folder. The folder holds the admin token, the SSH
 * host key, the TLS key and the store: a folder another user can write is a folder where they
 * can plant a symlink or replace a file and read or forge every secret, so the relay refuses
 * it and says which chmod or chown fixes it. A folder that is still empty and the relay's own
 * (a fresh Kubernetes emptyDir or a `mkdir` with a loose umask) is tightened to 0700 instead.
 */

/** Files whose content is secret: only their owner may read them. */
const SECRET_FILES = ['admin.token', 'ssh_host_ed25519_key', 'tls.key'];
/** Files that must not be changed by anyone else. */
const PRIVATE_FILES = ['lifeline.db', 'lifeline.db-wal', 'lifeline.db-shm', 'tls.crt', 'relay.pid', 'audit.jsonl'];

export class DataDirError extends Error {}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

function uid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

function ownedByUs(stats: Stats, me: number): boolean {
  return stats.uid === me || stats.uid === 0;
}

/** Refuses `dir` (and the relay's files in it) when another user could read a secret or change a file. */
export function checkDataDirModes(dir: string, log?: { warn(details: object, message: string): void }): void {
  const me = uid();
  if (me === undefined) return; // Windows: no POSIX modes to check
  const stats = statSync(dir);
  if (!ownedByUs(stats, me)) {
    throw new DataDirError(`dataDir ${dir} is owned by uid ${stats.uid}, not by the relay's user (uid ${me}): that user could read or replace its secrets. Fix: chown ${me} ${dir}`);
  }
  if ((stats.mode & 0o022) !== 0) {
    // Tighten first, then look: nobody else can add an entry once the mode is ours.
    if (stats.uid === me) {
      chmodSync(dir, 0o700);
      if (readdirSync(dir).length === 0) {
        log?.warn({ dataDir: dir, was: octal(stats.mode) }, 'the data folder was writable by others and still empty: its mode is now 0700');
        return checkFiles(dir, me);
      }
      chmodSync(dir, stats.mode & 0o7777);
    }
    throw new DataDirError(
      `dataDir ${dir} has mode ${octal(stats.mode)}: other users can create and replace files in it (and so read the admin token, host key and TLS key). ` +
        `Fix: chmod 700 ${dir}, then check that nothing in it was planted (ls -la ${dir})`,
    );
  }
  checkFiles(dir, me);
}

function checkFiles(dir: string, me: number): void {
  for (const name of [...SECRET_FILES, ...PRIVATE_FILES]) {
    const path = join(dir, name);
    let stats: Stats;
    try {
      stats = lstatSync(path);
    } catch {
      continue; // not made yet
    }
    if (stats.isSymbolicLink()) throw new DataDirError(`${path} is a symbolic link; the relay writes only files of its own here. Fix: remove it (rm ${path}) and restart`);
    if (!ownedByUs(stats, me)) throw new DataDirError(`${path} is owned by uid ${stats.uid}, not by the relay's user (uid ${me}). Fix: chown ${me} ${path}`);
    const loose = SECRET_FILES.includes(name) ? stats.mode & 0o077 : stats.mode & 0o022;
    if (loose !== 0) {
      const fix = SECRET_FILES.includes(name) ? 600 : 'go-w';
      throw new DataDirError(`${path} has mode ${octal(stats.mode)}: ${SECRET_FILES.includes(name) ? 'other users can read this secret' : 'other users can change it'}. Fix: chmod ${fix} ${path}`);
    }
  }
}
