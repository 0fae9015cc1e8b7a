import type { DiscoverySourceConfig } from '../config/config.js';
import type { VirtualMachineRegistry } from '../backends/virtual-machines.js';
import type { Logger } from '../logger.js';
import { DiscoveryError, type DiscoveredVm, type DiscoverySource } from './source.js';

export { DiscoveryError, type DiscoveredVm, type DiscoverySource };

/** The reason line a VM's sessions get when it goes away. */
const gone = (name: string, source: string): string => `the VM ${name} stopped or was removed (${source})`;

/** A source for its config; each kind's module (libvirt's XML parser) is loaded only when one is configured. */
export async function createSource(config: DiscoverySourceConfig, log: Logger): Promise<DiscoverySource> {
  if (config.kind === 'libvirt') return new (await import('./libvirt.js')).LibvirtSource(config.uri, log);
  return new (await import('./proxmox.js')).ProxmoxSource(config.runDir, config.configDir);
}

/**
 * Keeps the registry in step with the discovery sources: VMs appear, change (new channels after
 * a reboot) and go away without a relay restart, within `intervalMs` (sooner with events).
 */
export class Discovery {
  /** Names each source has, to tell which went away. */
  private readonly known = new Map<DiscoverySource, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly stopWatching: Array<() => void> = [];
  private scanning: Promise<void> | undefined;
  private again = false;
  private readonly lastError = new Map<DiscoverySource, string>();
  private closed = false;

  constructor(
    private readonly sources: readonly DiscoverySource[],
    private readonly registry: VirtualMachineRegistry,
    private readonly log: Logger,
    private readonly intervalMs = 2000,
  ) {}

  /**
   * The first scan: a name two sources (or a source and the config) both have is an error here,
   * so the relay does not start with one of them silently hidden.
   */
  async start(): Promise<void> {
    for (const source of this.sources) {
      let vms: DiscoveredVm[];
      try {
        vms = await source.scan();
      } catch (error) {
        this.log.warn({ source: source.description, err: (error as Error).message }, 'discovery source not readable yet; retrying');
        this.lastError.set(source, (error as Error).message);
        continue;
      }
      for (const vm of vms) {
        const holder = this.registry.get(vm.config.name);
        if (holder && holder.source !== source.kind) {
          throw new DiscoveryError(`the VM name "${vm.config.name}" is both in ${holder.source === 'static' ? 'virtualMachines' : holder.source} and in ${source.description}; rename one of them`);
        }
      }
      this.reconcile(source, vms);
    }
    for (const source of this.sources) if (source.watch) this.stopWatching.push(source.watch(() => this.scanSoon()));
    this.timer = setInterval(() => this.scanSoon(), this.intervalMs);
    this.timer.unref();
  }

  /** Runs a scan now, or right after the one under way. */
  scanSoon(): void {
    if (this.closed) return;
    if (this.scanning) {
      this.again = true;
      return;
    }
    this.scanning = this.scanAll().finally(() => {
      this.scanning = undefined;
      if (this.again) {
        this.again = false;
        this.scanSoon();
      }
    });
  }

  private async scanAll(): Promise<void> {
    for (const source of this.sources) {
      try {
        const vms = await source.scan();
        if (this.closed) return;
        if (this.lastError.delete(source)) this.log.info({ source: source.description }, 'discovery source readable again');
        this.reconcile(source, vms);
      } catch (error) {
        const message = (error as Error).message;
        if (this.lastError.get(source) !== message) this.log.warn({ source: source.description, err: message }, 'discovery scan failed; retrying');
        this.lastError.set(source, message);
      }
    }
  }

  private reconcile(source: DiscoverySource, vms: DiscoveredVm[]): void {
    const before = this.known.get(source) ?? new Set<string>();
    const now = new Set<string>();
    for (const vm of vms) {
      const name = vm.config.name;
      // A source may list a stopped VM (a defined libvirt domain): its sessions end as a vanished one's do.
      if (vm.state === 'Stopped' && before.has(name)) this.registry.markGone(name, 'Stopped', gone(name, source.kind));
      const result = this.registry.upsert(vm.config, source.kind, { state: vm.state, power: vm.power });
      if (result === 'conflict') {
        this.log.warn({ vm: name, source: source.description }, 'a discovered VM has the name of another VM; the first one is kept');
        continue;
      }
      now.add(name);
      if (result !== 'unchanged') this.log.info({ vm: name, source: source.description }, result === 'added' ? 'VM discovered' : 'VM channels changed; re-attached');
    }
    for (const name of before) {
      if (now.has(name)) continue;
      if (this.registry.markGone(name, 'Stopped', gone(name, source.kind))) {
        this.log.info({ vm: name, source: source.description }, 'VM gone; its sessions are closed and its console is kept');
      }
    }
    this.known.set(source, now);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const stop of this.stopWatching) stop();
  }
}
