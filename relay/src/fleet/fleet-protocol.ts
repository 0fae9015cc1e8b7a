import type { VmSource } from '../config/config.js';
import type { ConsoleRecord } from '../core/console-rules.js';
import type { CloseReason } from '../sessions/live-session.js';
import type { ConsoleType, PowerAction, PowerState, VmConsole } from '../sessions/console-seam.js';

/*
 * The control messages of the agent tunnel (JSON lines on the `lifeline-agent/1` channel). Each
 * side ignores a message type it does not know, so either can grow first.
 *
 * agent → gateway: hello, virtualMachines, stream-ended, result, notice, audit
 * gateway → agent: welcome, console, power, break, gateways, conflicts, recordings
 */

/** A VM as the agent reports it: what the gateway's API and sessions show. */
export interface VmDescriptor {
  name: string;
  source: VmSource;
  consoleTypes: ConsoleType[];
  powerState: PowerState;
  powerActions: PowerAction[];
  serialBreak: boolean;
  serialConnected: boolean;
  vncUnavailable?: string;
}

export function describeVm(vm: VmConsole): VmDescriptor {
  return {
    name: vm.name,
    source: vm.source,
    consoleTypes: vm.consoleTypes,
    powerState: vm.powerState,
    powerActions: vm.powerActions,
    serialBreak: vm.serialBreak,
    serialConnected: vm.serial?.connected ?? false,
    ...(vm.vncUnavailable !== undefined && { vncUnavailable: vm.vncUnavailable }),
  };
}

/** What an agent needs of a Console resource to check the streams it serves (never the key itself). */
export interface ConsoleView {
  accessId: string;
  enabled: boolean;
  keyFingerprint: string;
  expiration: number;
  /** When it was last written (epoch ms): of two views of one console, the later one holds. */
  updatedAt: number;
}

export function consoleView(record: ConsoleRecord | undefined): ConsoleView | null {
  return record ? { accessId: record.accessId, enabled: record.enabled, keyFingerprint: record.keyFingerprint, expiration: record.expiration, updatedAt: record.updatedAt } : null;
}

/** What a gateway asks a stream for. */
export interface StreamRequest {
  /** `*-observe`: read-only streams beside the VM's session, outside its slot (no fencing); `recording`: one segment (`recordingId`, `segment`) of a recording the agent keeps. */
  kind: 'serial' | 'vnc' | 'serial-observe' | 'vnc-observe' | 'recording';
  virtualMachine: string;
  /** The session slot's fencing number: the agent keeps only the newest stream per VM and kind. */
  fence: number;
  /** The stream's id (the slot's holder), named in `stream-ended` messages. */
  session: string;
  /** What the session was admitted with: the agent ends the stream when the console no longer admits it. */
  grant?: { accessId: string; keyFingerprint: string };
  /** The console's expiration when the stream opened (epoch ms): the agent ends it then unless told of a later one. */
  expiration?: number;
  /** The Console resource as the slot's transaction read it: fresher than any the agent was told before. */
  console?: ConsoleView;
  /** Who opened it (`session 1a2b3c4d from 10.0.0.5 via SSH`), for the reason line of the session it displaces; serial: the lines to replay (absent: all). */
  owner?: string;
  replayLines?: number;
  /** The gateway session it is for (a recording's participant), and its console's `recording` setting (the agent records by it and its own config). */
  participant?: { session: string; path: 'ssh' | 'websocket'; endpoint: string; remoteAddress: string; terminal?: { width: number; height: number } };
  recording?: 'required' | 'off' | 'default';
  recordingId?: string;
  segment?: string;
}

export interface HelloMessage {
  type: 'hello';
  name: string;
  version: string;
  virtualMachines: VmDescriptor[];
}

export interface VirtualMachinesMessage {
  type: 'virtualMachines';
  virtualMachines: VmDescriptor[];
}

/** The agent ended a stream: the gateway closes its session with `reason` (sent before the channel closes). */
export interface StreamEndedMessage {
  type: 'stream-ended';
  session: string;
  reason: CloseReason;
}

export interface ResultMessage {
  type: 'result';
  id: number;
  ok: boolean;
  error?: { code: string; message: string };
  /** What a `recordings` request asked for. */
  value?: unknown;
}

/** A line for the user of the session a stream is for (its id as the stream's `session`), outside the console's stream: "this session is recorded". */
export interface NoticeMessage {
  type: 'notice';
  session: string;
  line: string;
}

/** An event of the agent's recordings (`recording.*`) for the fleet's audit trail; the agent keeps it in its own trail too. */
export interface AuditMessage {
  type: 'audit';
  event: { type: string } & Record<string, unknown>;
}

/** The recordings an agent keeps (docs/recordings.md#in-a-fleet): listed, read, held, deleted for a gateway's API. */
export interface RecordingsMessage {
  type: 'recordings';
  id: number;
  op: 'list' | 'get' | 'hold' | 'delete';
  recording?: string;
  virtualMachine?: string;
  since?: number;
  hold?: boolean;
  reason?: string;
}

/** The gateway's answer to a hello: its id, and the VM names another agent holds (refused here). */
export interface WelcomeMessage {
  type: 'welcome';
  gateway: string;
}

/** A Console resource changed (or was re-read): the agent ends every stream it no longer admits. */
export interface ConsoleMessage {
  type: 'console';
  virtualMachine: string;
  console: ConsoleView | null;
}

export interface PowerMessage {
  type: 'power';
  id: number;
  virtualMachine: string;
  action: PowerAction;
}

export interface BreakMessage {
  type: 'break';
  id: number;
  virtualMachine: string;
}

/** Every gateway of the fleet (their `agents.advertiseAddress`): the agent keeps a tunnel to each. */
export interface GatewaysMessage {
  type: 'gateways';
  addresses: string[];
}

/** VM names this agent announced that another agent holds: the fleet does not list them for this agent. */
export interface ConflictsMessage {
  type: 'conflicts';
  virtualMachines: Array<{ name: string; heldBy: string }>;
}

export type AgentMessage = HelloMessage | VirtualMachinesMessage | StreamEndedMessage | ResultMessage | NoticeMessage | AuditMessage;
export type GatewayMessage = WelcomeMessage | ConsoleMessage | PowerMessage | BreakMessage | GatewaysMessage | ConflictsMessage | RecordingsMessage;
