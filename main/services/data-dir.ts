import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The desktop's data folder (settings with the relay list, the embedded relay, its lab VMs), one
 * for the Electron app, browser mode and the `lifeline` CLI, so that a relay added in one is there
 * in the others: `LIFELINE_DATA_DIR`, else the platform's per-user data folder.
 */
export function desktopDataDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string {
  if (env.LIFELINE_DATA_DIR) return resolve(env.LIFELINE_DATA_DIR);
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'Lifeline');
  if (platform === 'win32') return join(env.APPDATA || join(home, 'AppData', 'Roaming'), 'Lifeline');
  return join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'lifeline');
}
