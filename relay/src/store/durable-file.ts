import { closeSync, constants, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` to `path` so that, once this returns, a crash or a failing disk leaves either the
 * whole file or none of it: written to a temporary file beside it, flushed to the disk, moved into
 * place, and the folder flushed too. `exclusive` fails with EEXIST when `path` already exists
 * (instead of replacing it).
 */
export function writeFileDurable(path: string, data: string | Uint8Array, mode: number, options: { exclusive?: boolean } = {}): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openTemporary(temporary, mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    if (options.exclusive) {
      linkSync(temporary, path);
      unlinkSync(temporary);
    } else {
      renameSync(temporary, path);
    }
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // already gone
    }
    throw error;
  }
  syncFolder(dirname(path));
}

/**
 * Creates the temporary file exclusively: O_EXCL never opens an existing file and never follows
 * a symlink planted under its name (which would send a secret wherever it points). One left by
 * an earlier run with the same pid is removed (unlink removes a link, not what it points to) and
 * the create tried once more.
 */
function openTemporary(path: string, mode: number): number {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);
  try {
    return openSync(path, flags, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    unlinkSync(path);
    return openSync(path, flags, mode);
  }
}

/** Flushes a folder's entries (a new or renamed file in it) to the disk. */
export function syncFolder(folder: string): void {
  const fd = openSync(folder, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
