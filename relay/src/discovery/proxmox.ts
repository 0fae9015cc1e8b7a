import { watch, type FSWatcher } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VM_NAME, type SocketAddress } from '../config/config.js';
import { processAlive } from '../core/process-alive.js';
import type { DiscoveredVm, DiscoverySource } from './source.js';

const CHANNEL = /^(\d+)\.(serial0|vnc|qmp|pid)$/;

/**
 * Proxmox VE's layout: QEMU's sockets in `runDir` as `<vmid>.serial0`, `<vmid>.vnc`, `<vmid>.qmp`
 * (and `<vmid>.pid`), the VM's name in `configDir/<vmid>.conf` (`name:`), else `vm<vmid>`.
 */
export class ProxmoxSource implements DiscoverySource {
  readonly kind = 'proxmox' as const;
  readonly description: string;

  constructor(
    private readonly runDir: string,
    private readonly configDir: string,
  ) {
    this.description = `proxmox ${runDir}`;
  }

  private async name(vmid: string): Promise<string> {
    try {
      const conf = await readFile(join(this.configDir, `${vmid}.conf`), 'utf8');
      // The VM's own section ends where a snapshot section ([name]) starts.
      const own = conf.split(/^\[/m)[0]!;
      const name = /^name:\s*(\S+)\s*$/m.exec(own)?.[1];
      if (name && VM_NAME.test(name)) return name;
    } catch {
      // No config (or not readable): the vmid names it.
    }
    return `vm${vmid}`;
  }

  async scan(): Promise<DiscoveredVm[]> {
    const entries = await readdir(this.runDir);
    const byVmid = new Map<string, Map<string, string>>();
    for (const entry of entries) {
      const match = CHANNEL.exec(entry);
      if (!match) continue;
      const path = join(this.runDir, entry);
      const stat = await lstat(path).catch(() => undefined);
      if (!stat || (match[2] === 'pid' ? !stat.isFile() : !stat.isSocket())) continue;
      const channels = byVmid.get(match[1]!) ?? new Map<string, string>();
      channels.set(match[2]!, path);
      byVmid.set(match[1]!, channels);
    }
    const vms: DiscoveredVm[] = [];
    for (const [vmid, channels] of byVmid) {
      // A pid file says whether QEMU runs; without one, its sockets do.
      const pidFile = channels.get('pid');
      if (pidFile) {
        const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
        if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) continue;
      }
      const unix = (kind: string): SocketAddress | undefined => (channels.has(kind) ? { kind: 'unix', path: channels.get(kind)! } : undefined);
      const serial = unix('serial0');
      const vnc = unix('vnc');
      if (!serial && !vnc) continue;
      vms.push({ config: { name: await this.name(vmid), serial, serialProtocol: 'raw', vnc, qmp: unix('qmp') } });
    }
    return vms.sort((a, b) => a.config.name.localeCompare(b.config.name));
  }

  watch(changed: () => void): () => void {
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(this.runDir, () => changed());
      watcher.on('error', () => undefined);
    } catch {
      // Not there yet: the periodic scan finds it.
    }
    return () => watcher?.close();
  }
}
