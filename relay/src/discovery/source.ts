/** What a discovery source is and reports (apart from the sources, so that they and the scanner import it without a cycle). */
import type { VirtualMachineConfig, VmSource } from '../config/config.js';
import type { PowerBackend } from '../backends/virtual-machines.js';
import type { PowerState } from '../backends/qmp-monitor.js';

/** A VM a source found, with its console channels. */
export interface DiscoveredVm {
  config: VirtualMachineConfig;
  /** The state the source reports (libvirt); a VM with QMP reports its own. */
  state?: PowerState;
  power?: PowerBackend;
}

/** One place VMs are found: scanned on a timer and whenever `watch` says something changed. */
export interface DiscoverySource {
  readonly kind: VmSource;
  readonly description: string;
  /** Every VM there now. Throws when the source cannot be read (it is retried; nothing is marked gone). */
  scan(): Promise<DiscoveredVm[]>;
  /** Calls `changed` on a hint that the VMs changed (events, a folder changed); returns the stop function. */
  watch?(changed: () => void): () => void;
}

export class DiscoveryError extends Error {}
