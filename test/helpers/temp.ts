import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temp folder removed by `dispose()` (call it from `after`, so it goes also on failure). Short paths keep unix sockets under 108 bytes. */
export function tempDir(prefix: string): { path: string; dispose: () => void } {
  const path = mkdtempSync(join(tmpdir(), `ll-${prefix}-`));
  return { path, dispose: () => rmSync(path, { recursive: true, force: true }) };
}
