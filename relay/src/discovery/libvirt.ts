import type { Logger } from '../logger.js';
import { DiscoveryError, type DiscoveredVm, type DiscoverySource } from './discovery.js';

/** libvirt discovery is not in this version: the source says so when the relay starts. */
export class LibvirtSource implements DiscoverySource {
  readonly kind = 'libvirt' as const;
  readonly description: string;

  constructor(
    readonly uri: string,
    private readonly log: Logger,
  ) {
    this.description = `libvirt ${uri}`;
  }

  async scan(): Promise<DiscoveredVm[]> {
    throw new DiscoveryError(`libvirt discovery (${this.uri}) is not available in this version of the relay; list the VMs under virtualMachines`);
  }
}
