import type { Duplex } from 'node:stream';
import type { VmSource } from '../config/config.js';
import type { SessionGrant } from '../core/console-rules.js';
import type { CloseReason } from './live-session.js';

/*
 * The one seam between sessions and consoles. The SSH server, the WebSocket VNC server, the API
 * and the metrics reach a VM only through these interfaces: its serial stream, its VNC stream,
 * break, power, and its state as it is read. Today's implementation is local
 * (backends/virtual-machines.ts: QEMU and libvirt sockets on this host); a remote one (a
 * hypervisor agent) implements the same interfaces, and no session code changes. The lint step
 * keeps ssh/, vnc/, api/ and metrics/ from importing backends/ directly.
 */

export type ConsoleType = 'serial' | 'vnc';

export type PowerState = 'Running' | 'Paused' | 'Stopped' | 'Unavailable';

/**
 * What `POST /v1/virtualMachines/{vm}/powerActions` can ask: `shutdown` asks the guest to shut
 * down (the ACPI power button; a guest that ignores it keeps running), `powerOff` stops the VM at
 * once (pulling the plug), `reset` restarts it at once, `powerOn` starts a stopped one.
 */
export type PowerAction = 'reset' | 'shutdown' | 'powerOff' | 'powerOn' | 'nmi';

/** A power action this VM cannot take, or cannot take now; `code` is the API's error code. */
export class PowerActionError extends Error {
  constructor(
    readonly code: 'PowerActionNotSupported' | 'PowerActionFailed',
    message: string,
  ) {
    super(message);
  }
}

/** Where serial output goes: an SSH channel behind a WriteWindow, or anything with the same semantics. */
export interface SerialSink {
  /** False means: stop reading the VM until `onceDrain`. */
  write(chunk: Buffer): boolean;
  onceDrain(listener: () => void): void;
  cancelDrain(listener: () => void): void;
  /** The console ended the stream under the session (a remote console: displaced on another gateway, revoked at the agent, the agent gone); the session closes with `reason`. */
  end?(reason: CloseReason): void;
}

/**
 * Who a console stream is for. A local console ignores it; a remote one (a hypervisor agent)
 * takes the VM's session slot for it in the fleet's database, and the agent checks the grant.
 */
export interface StreamOwner {
  grant: SessionGrant | undefined;
  remoteAddress: string;
  path: 'ssh' | 'websocket';
  /** The session's id (what GET /v1/sessions shows) and endpoint, for a fleet's session list. */
  session?: string;
  endpoint?: string;
  /** How many lines of the kept output to replay (OpenSSH `SetEnv LIFELINE_REPLAY=N`); absent: all of it. */
  replayLines?: number;
  /** A read-only stream beside the VM's session (an observer's): a remote console opens it without taking the session slot. */
  observe?: boolean;
  /** The session's terminal size at the start (an SSH pty request), for a remote console's recording. */
  terminal?: { width: number; height: number };
  /** Tells the session's user a line from the console (a remote console's recorder: "this session is recorded"). */
  notify?: (line: string) => void;
}

/** A VM's serial console, shared by its sessions: output (after a replay of recent output) to the attached sink, input, and break. */
export interface SerialStream {
  /** Whether the VM's serial port is connected now. */
  readonly connected: boolean;
  /** Whether the port can take a break (a telnet-mode chardev). */
  readonly canBreak: boolean;
  /** Hands the output (the replay first) to `sink`; returns the detach function. */
  attach(sink: SerialSink, owner?: StreamOwner): () => void;
  /**
   * Adds a read-only `sink` beside the attached one: the replay, then the output, never holding up
   * the VM (a sink that falls behind misses output and hears how much). Returns the detach
   * function. Absent where the console cannot be shared yet.
   */
  observe?(sink: SerialSink, owner?: StreamOwner): () => void;
  /** Hands every chunk the VM sends from now on to `listener`, exactly (no replay, none of the relay's notices): what a recording keeps. Returns the detach function. */
  tap?(listener: (chunk: Buffer) => void): () => void;
  /** Input for the VM; false: wait for `drain`. */
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
  /** Sends a break now; false when it cannot. */
  sendBreak(): boolean;
  /** Forgets the kept output: the console changed hands (deleted, re-keyed), and the next holder must not see it. */
  clearReplay(): void;
}

/** Reads a VNC connection through the relay's pooled buffers: `handler` returns false to pause until `release`. */
export interface VncReader {
  start(socket: Duplex, handler: (chunk: Buffer, release: () => void) => boolean): void;
}

/** A connection to a VM's VNC server: a socket here, an SSH channel to a hypervisor agent in a fleet. */
export interface VncStream {
  socket: Duplex & { setNoDelay?(noDelay?: boolean): unknown };
  reader: VncReader;
  /** Why the console ended the stream, when it said (a remote console); undefined: the VM's connection just ended. */
  endReason?(): CloseReason | undefined;
}

/** A VM as sessions see it. */
export interface VmConsole {
  readonly name: string;
  readonly source: VmSource;
  readonly consoleTypes: ConsoleType[];
  readonly powerState: PowerState;
  readonly powerActions: PowerAction[];
  readonly serialBreak: boolean;
  /** The hypervisor agent it is on (a fleet gateway's VMs); undefined on a standalone relay. */
  readonly agent?: string;
  /**
   * True when the console itself keeps one session per kind and ends the others with the reason
   * (a remote console: the agent keeps the stream with the newest fencing number, whichever
   * gateway it came through), so the relay does not displace by order of arrival.
   */
  readonly keepsOneSession?: boolean;
  /** Why its screen cannot be opened now, or undefined. */
  readonly vncUnavailable: string | undefined;
  readonly serial: SerialStream | undefined;
  /** Opens a new connection to its screen. */
  openVnc(owner?: StreamOwner): Promise<VncStream>;
  /** Rejects with PowerActionError when the action cannot be taken. */
  power(action: PowerAction): Promise<void>;
}

/** Every VM the relay knows, by name. */
export interface ConsoleDirectory {
  get(name: string): VmConsole | undefined;
  list(): VmConsole[];
  /**
   * `listener` runs when a VM's consoles end under their sessions: it went away (a discovered VM
   * undefined, a hypervisor out of reach) or came back with other channels; `reason` is for its
   * users. The relay closes the VM's sessions with it. Returns the unsubscribe function.
   */
  onGone(listener: (name: string, reason: string) => void): () => void;
}
