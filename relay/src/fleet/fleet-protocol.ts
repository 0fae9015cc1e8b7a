import type { VmSource } from '../config/config.js';
import type { ConsoleRecord } from '../core/console-rules.js';
import type { CloseReason } from '../sessions/live-session.js';
import type { ConsoleType, PowerAction, PowerState, VmConsole } from '../sessions/console-seam.js';

/*
 * The control messages of the agent tunnel (JSON lines on the `lifeline-agent/1` channel). Each
 * side ignores a message type it does not know, so either can grow first.
 *
 * agent → gateway: hello, virtualMachines, stream-ended, result
 * gateway → agent: welcome, console, power, break, gateways, conflicts
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

export type AgentMessage = HelloMessage | VirtualMachinesMessage | StreamEndedMessage | ResultMessage;
export type GatewayMessage = WelcomeMessage | ConsoleMessage | PowerMessage | BreakMessage | GatewaysMessage | ConflictsMessage;
