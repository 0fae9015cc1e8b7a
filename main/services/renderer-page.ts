import { posix, win32 } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Whether `frameUrl` (what Electron reports for a frame) shows exactly `rendererPage` (a file
 * path): compared as paths, not strings, so `file:///C:/Program%20Files/...` matches
 * `C:\Program Files\...` on Windows (case-insensitively, as its file system is).
 */
export function isRendererPage(frameUrl: string, rendererPage: string, platform: NodeJS.Platform = process.platform): boolean {
  const windows = platform === 'win32';
  let path: string;
  try {
    const url = new URL(frameUrl);
    if (url.protocol !== 'file:' || url.search || url.hash) return false;
    path = fileURLToPath(url, { windows });
  } catch {
    return false;
  }
  if (windows) return win32.normalize(path).toLowerCase() === win32.normalize(rendererPage).toLowerCase();
  return posix.normalize(path) === posix.normalize(rendererPage);
}
