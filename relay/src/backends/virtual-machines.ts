import { describeAddress, type VirtualMachineConfig, type VmSource } from '../config/config.js';
import type { Logger } from '../logger.js';
import { BufferPool } from '../core/buffer-pool.js';
import { connectTo } from './connect.js';
import { PooledReader } from './pooled-reader.js';
import { QmpMonitor, type PowerState } from './qmp-monitor.js';
import { SerialAttachment } from './serial-attachment.js';
import { PowerActionError, type ConsoleDirectory, type ConsoleType, type PowerAction, type VmConsole, type VncStream } from '../sessions/console-seam.js';

export { PowerActionError, type ConsoleType, type PowerAction } from '../sessions/console-seam.js';

/**
 * The QMP command behind each action. QMP's hard stop is `quit`: the QEMU process ends (it must be
 * started again where it is defined), so QMP cannot power a VM on. Until this relay version QMP's
 * `powerOff` was the ACPI request: that is `shutdown` now, named for what it does.
 */
const QMP_POWER_ACTIONS: Partial<Record<PowerAction, string>> = { reset: 'system_reset', shutdown: 'system_powerdown', powerOff: 'quit', nmi: 'inject-nmi' };

/** A connection to a VM's VNC server, read through pooled buffers (the seam's VncStream). */
export interface VncConnection extends VncStream {
  reader: PooledReader;
}

/** Read buffers for VNC connections, one pool per relay (its VM registry) shared by its VMs: 64 KiB is what a socket read returns at most. */
export function vncReadPool(): BufferPool {
  return new BufferPool(64 * 1024, 32);
}

/** Power control other than QMP (libvirt's virsh), given by the VM's discovery source. */
export interface PowerBackend {
  readonly actions: PowerAction[];
  run(action: PowerAction): Promise<void>;
}

/** One configured or discovered VM and its live channels. */
export class VirtualMachine implements VmConsole {
  readonly serial: SerialAttachment | undefined;
  private readonly qmp: QmpMonitor | undefined;
  private readonly log: Logger;
  /** Set once a discovered VM went away: its channels are closed and it shows this state. */
  gone: PowerState | undefined;
  /** The state its discovery source reports (libvirt), when it has no QMP of its own. */
  reportedState: PowerState | undefined;

  constructor(
    readonly config: VirtualMachineConfig,
    replayBytes: number,
    log: Logger,
    readonly source: VmSource = 'static',
    private readonly powerBackend?: PowerBackend,
    private readonly readPool: BufferPool = vncReadPool(),
  ) {
    const vmLog = log.child({ vm: config.name });
    this.log = vmLog;
    this.serial = config.serial && new SerialAttachment(config.name, config.serial, replayBytes, vmLog, config.serialProtocol);
    this.qmp = config.qmp && new QmpMonitor(config.qmp, vmLog);
  }

  get name(): string {
    return this.config.name;
  }

  get consoleTypes(): ConsoleType[] {
    return [...(this.config.serial ? (['serial'] as const) : []), ...(this.config.vnc ? (['vnc'] as const) : [])];
  }

  /** From QMP when configured; otherwise Running while the serial chardev is connected. */
  get powerState(): PowerState {
    if (this.gone) return this.gone;
    if (this.reportedState) return this.reportedState;
    if (this.qmp) return this.qmp.state;
    if (this.serial) return this.serial.connected ? 'Running' : 'Unavailable';
    return 'Unavailable';
  }

  /**
   * Why the VM's screen cannot be served now, or undefined when it can (or the relay cannot tell:
   * a VNC-only VM without QMP has no state to go by, and its socket is tried when a client comes).
   */
  get vncUnavailable(): string | undefined {
    if (!this.config.vnc) return `${this.name} has no VNC console`;
    const state = this.powerState;
    if (state === 'Running' || state === 'Paused') return undefined;
    if (!this.gone && !this.reportedState && !this.qmp && !this.serial) return undefined;
    return `${this.name} is ${state}: there is no screen to show. ${state === 'Stopped' ? 'Start it first (powerActions: powerOn, where offered)' : 'Wait until it is Running (its console sockets are not there yet)'}, then mint a token`;
  }

  /** Whether the serial port takes a break (a telnet-mode chardev). */
  get serialBreak(): boolean {
    return this.serial?.canBreak ?? false;
  }

  /** The power actions this VM's backend offers (listed per VM in the API). */
  get powerActions(): PowerAction[] {
    if (this.gone) return []; // nothing left to act on; the source lists it again when it is back
    if (this.powerBackend) return [...this.powerBackend.actions];
    // QMP not connected (QEMU not running, or its socket not there yet): no action could reach it.
    if (this.qmp && this.qmp.state === 'Unavailable') return [];
    return this.qmp ? (Object.keys(QMP_POWER_ACTIONS) as PowerAction[]) : [];
  }

  /** Takes a power action through the VM's backend (QMP for a configured VM). */
  async power(action: PowerAction): Promise<void> {
    if (this.powerBackend) {
      if (!this.powerBackend.actions.includes(action)) {
        throw new PowerActionError('PowerActionNotSupported', `${this.name} cannot ${action} now (it offers ${this.powerBackend.actions.join(', ') || 'nothing'})`);
      }
      try {
        await this.powerBackend.run(action);
      } catch (error) {
        throw new PowerActionError('PowerActionFailed', `${this.name}: ${action} failed: ${(error as Error).message}`);
      }
      this.log.info({ action, source: this.source }, 'power action done');
      return;
    }
    const command = this.qmp && QMP_POWER_ACTIONS[action];
    if (!this.qmp || !command) {
      const offered = this.powerActions;
      throw new PowerActionError(
        'PowerActionNotSupported',
        offered.length === 0
          ? `${this.name} has no power control: configure its qmp socket (or let the relay discover it from libvirt)`
          : `${this.name} cannot ${action}: ${action === 'powerOn' ? 'nothing can start a VM whose QEMU process is not running; start it where it is defined' : 'its backend does not offer it'} (it offers ${offered.join(', ')})`,
      );
    }
    try {
      await this.qmp.execute(command, undefined, 5000, command === 'quit');
    } catch (error) {
      throw new PowerActionError('PowerActionFailed', `${this.name}: ${action} failed: ${(error as Error).message}`);
    }
    this.log.info({ action, command }, 'power action done');
  }

  /** A new connection to the VM's VNC server (QEMU serves several); rejects with a message for the client. */
  async openVnc(): Promise<VncConnection> {
    const address = this.config.vnc;
    if (!address) throw new Error(`${this.name} has no VNC console`);
    const reader = new PooledReader(this.readPool);
    try {
      return { socket: await connectTo(address, 3000, reader.onread), reader };
    } catch (error) {
      this.log.warn({ err: (error as Error).message, vnc: describeAddress(address) }, 'VNC socket unreachable');
      throw new Error(`the screen of ${this.name} is not available (the VM is not running or its VNC socket is unreachable)`, { cause: error });
    }
  }

  start(): void {
    this.serial?.start();
    this.qmp?.start();
  }

  close(): void {
    this.serial?.close();
    this.qmp?.close();
  }
}

/** The VMs: those named in the config, and those discovery finds (which may come and go), by name. */
export class VirtualMachineRegistry implements ConsoleDirectory {
  private readonly byName = new Map<string, VirtualMachine>();
  private started = false;
  /** The relay's VNC read buffers (no module-level pool: two relays in one process keep their own). */
  private readonly readPool = vncReadPool();
  private readonly goneListeners = new Set<(name: string, reason: string) => void>();

  constructor(
    configs: readonly VirtualMachineConfig[],
    private readonly replayBytes: number,
    private readonly log: Logger,
  ) {
    for (const config of configs) this.byName.set(config.name, new VirtualMachine(config, replayBytes, log, 'static', undefined, this.readPool));
  }

  get(name: string): VirtualMachine | undefined {
    return this.byName.get(name);
  }

  list(): VirtualMachine[] {
    return [...this.byName.values()];
  }

  onGone(listener: (name: string, reason: string) => void): () => void {
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  private emitGone(name: string, reason: string): void {
    for (const listener of this.goneListeners) listener(name, reason);
  }

  start(): void {
    this.started = true;
    for (const vm of this.byName.values()) vm.start();
  }

  /**
   * A discovered VM is there: added, or re-attached when its channels changed (a libvirt pty is
   * new at every boot) or it comes back. 'conflict': another source (or the config) has that name.
   */
  upsert(config: VirtualMachineConfig, source: VmSource, options: { state?: PowerState; power?: PowerBackend } = {}): 'added' | 'updated' | 'unchanged' | 'conflict' {
    const existing = this.byName.get(config.name);
    if (existing && existing.source !== source) return 'conflict';
    if (existing && !existing.gone && JSON.stringify(existing.config) === JSON.stringify(config) && sameActions(existing, options.power)) {
      existing.reportedState = options.state;
      return 'unchanged';
    }
    if (existing) {
      if (!existing.gone) this.emitGone(config.name, `the VM ${config.name} changed its console channels (${source}); reconnect`);
      existing.close();
    }
    const vm = new VirtualMachine(config, this.replayBytes, this.log, source, options.power, this.readPool);
    vm.reportedState = options.state;
    this.byName.set(config.name, vm);
    if (this.started) vm.start();
    return existing ? 'updated' : 'added';
  }

  /** A discovered VM went away: its sessions close with a reason, its channels stop; it stays listed (its console is kept). */
  markGone(name: string, state: PowerState, reason: string): boolean {
    const vm = this.byName.get(name);
    if (!vm || vm.source === 'static' || vm.gone) return false;
    vm.gone = state;
    this.emitGone(name, reason);
    vm.close();
    return true;
  }

  close(): void {
    for (const vm of this.byName.values()) vm.close();
  }
}

function sameActions(vm: VirtualMachine, power: PowerBackend | undefined): boolean {
  return JSON.stringify(vm.powerActions) === JSON.stringify(power ? power.actions : vm.powerActions);
}
