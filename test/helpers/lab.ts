import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { RELAY_BIN } from './relay-process.js';
import { tempDir } from './temp.js';

export interface Lab {
  dir: string;
  configPath: string;
  vmDir(name: string): string;
  /** Stops the lab's VMs and removes its folder. Idempotent. */
  down(): void;
}

/** Boots real QEMU lab VMs through the relay's own `lab up` (the image is cached across runs). */
export function startLab(count: number): Lab {
  const dir = tempDir('lab');
  let stopped = false;
  const down = (): void => {
    if (stopped) return;
    stopped = true;
    try {
      execFileSync(process.execPath, [RELAY_BIN, 'lab', 'down', '--dir', dir.path], { stdio: 'ignore' });
    } finally {
      dir.dispose();
    }
  };
  try {
    const configPath = execFileSync(process.execPath, [RELAY_BIN, 'lab', 'up', '--vms', String(count), '--dir', dir.path], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    return { dir: dir.path, configPath, vmDir: (name) => join(dir.path, name), down };
  } catch (error) {
    down();
    throw error;
  }
}
