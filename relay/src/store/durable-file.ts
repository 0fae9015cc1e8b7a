import { closeSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` to `path` so that, once this returns, a crash or a failing disk leaves either the
 * whole file or none of it: written to a temporary file beside it, flushed to the disk, moved into
 * place, and the folder flushed too. `exclusive` fails with EEXIST when `path` already exists
 * (instead of replacing it).
 */
export function writeFileDurable(path: string, data: string | Uint8Array, mode: number, options: { exclusive?: boolean } = {}): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temporary, 'w', mode);
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

/** Flushes a folder's entries (a new or renamed file in it) to the disk. */
export function syncFolder(folder: string): void {
  const fd = openSync(folder, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
