import type { Socket } from 'node:net';
import { describeAddress, type VirtualMachineConfig } from '../config/config.js';
import type { Logger } from '../logger.js';
import { BufferPool } from '../core/buffer-pool.js';
import { connectTo } from './connect.js';
import { PooledReader } from './pooled-reader.js';
import { QmpMonitor, type PowerState } from './qmp-monitor.js';
import { SerialAttachment } from './serial-attachment.js';

export type ConsoleType = 'serial' | 'vnc';

/** What `POST /v1/virtualMachines/{vm}/powerActions` can ask. */
export type PowerAction = 'reset' | 'powerOff' | 'powerOn' | 'nmi';

/** The QMP command behind each action; QMP cannot start a VM whose QEMU is not running, so no powerOn. */
const QMP_POWER_ACTIONS: Partial<Record<PowerAction, string>> = { reset: 'system_reset', powerOff: 'system_powerdown', nmi: 'inject-nmi' };

/** A power action this VM cannot take, or cannot take now; `code` is the API's error code. */
export class PowerActionError extends Error {
  constructor(
    readonly code: 'PowerActionNotSupported' | 'PowerActionFailed',
    message: string,
  ) {
    super(message);
  }
}

/** A connection to a VM's VNC server, read through pooled buffers. */
export interface VncConnection {
  socket: Socket;
  reader: PooledReader;
}

/** Read buffers for VNC connections, shared by the relay's VMs: 64 KiB is what a socket read returns at most. */
const VNC_READ_POOL = new BufferPool(64 * 1024, 32);

/** One configured VM and its live channels. */
export class VirtualMachine {
  readonly serial: SerialAttachment | undefined;
  private readonly qmp: QmpMonitor | undefined;
  private readonly log: Logger;

  constructor(
    readonly config: VirtualMachineConfig,
    replayBytes: number,
    log: Logger,
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
    if (this.qmp) return this.qmp.state;
    if (this.serial) return this.serial.connected ? 'Running' : 'Unavailable';
    return 'Unavailable';
  }

  /** Whether the serial port takes a break (a telnet-mode chardev). */
  get serialBreak(): boolean {
    return this.serial?.canBreak ?? false;
  }

  /** The power actions this VM's backend offers (listed per VM in the API). */
  get powerActions(): PowerAction[] {
    return this.qmp ? (Object.keys(QMP_POWER_ACTIONS) as PowerAction[]) : [];
  }

  /** Takes a power action through the VM's backend (QMP for a configured VM). */
  async power(action: PowerAction): Promise<void> {
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
      await this.qmp.execute(command);
    } catch (error) {
      throw new PowerActionError('PowerActionFailed', `${this.name}: ${action} failed: ${(error as Error).message}`);
    }
    this.log.info({ action, command }, 'power action done');
  }

  /** A new connection to the VM's VNC server (QEMU serves several); rejects with a message for the client. */
  async openVnc(): Promise<VncConnection> {
    const address = this.config.vnc;
    if (!address) throw new Error(`${this.name} has no VNC console`);
    const reader = new PooledReader(VNC_READ_POOL);
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

/** The VMs named in the config, by name. */
export class VirtualMachineRegistry {
  private readonly byName = new Map<string, VirtualMachine>();

  constructor(configs: readonly VirtualMachineConfig[], replayBytes: number, log: Logger) {
    for (const config of configs) this.byName.set(config.name, new VirtualMachine(config, replayBytes, log));
  }

  get(name: string): VirtualMachine | undefined {
    return this.byName.get(name);
  }

  list(): VirtualMachine[] {
    return [...this.byName.values()];
  }

  start(): void {
    for (const vm of this.byName.values()) vm.start();
  }

  close(): void {
    for (const vm of this.byName.values()) vm.close();
  }
}
