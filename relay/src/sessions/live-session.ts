import type { SessionGrant } from '../core/console-rules.js';
import type { ConsoleKind } from '../core/session-registry.js';

/** Why a session or connection ended, for the audit trail (`code`) and the client (`message`). */
export type CloseCode =
  | 'client-left'
  | 'vm-disconnected'
  | 'displaced'
  | 'disabled'
  | 'expired'
  | 'rekeyed'
  | 'deleted'
  | 'vm-gone'
  | 'endpoint-changed'
  | 'closed-by-admin'
  | 'shutdown'
  /** A fleet gateway cannot reach its database: no new session can be decided. */
  | 'unavailable'
  /** An observer's console stopped allowing observers (allowObservers set to false). */
  | 'observers-disallowed'
  /** The client sent what the relay cannot follow (an observer's VNC viewer with another security type or message). */
  | 'unsupported-client'
  /** The console's recording is required and the relay cannot record it. */
  | 'recording-unavailable';

/** A participant's part in a shared console: the one whose input reaches the VM, or one who watches (docs/sharing.md). */
export type SessionRole = 'controller' | 'observer';

/**
 * The SSH `exit-status` a serial session closed by the relay ends with, so that OpenSSH's `ssh`
 * (and `lifeline connect`) exits with a code that says why (docs/relay.md, docs/cli.md). Fixed:
 * scripts test for these numbers. `client-left` sends none (the client is gone).
 */
export const CLOSE_EXIT_STATUS: Readonly<Record<Exclude<CloseCode, 'client-left'>, number>> = {
  displaced: 10,
  disabled: 11,
  expired: 12,
  rekeyed: 13,
  deleted: 14,
  'vm-gone': 15,
  shutdown: 16,
  'closed-by-admin': 17,
  'endpoint-changed': 18,
  unavailable: 19,
  'vm-disconnected': 20,
  'observers-disallowed': 21,
  'unsupported-client': 22,
  'recording-unavailable': 23,
};

export interface CloseReason {
  code: CloseCode;
  /** What the client is told (the serial line `[lifeline] session closed: …`, a WebSocket close reason). */
  message: string;
  /** For `displaced`: the session that took over. */
  by?: string;
}

/** An admitted SSH connection (or, later, WebSocket): what the console rules are re-checked against. */
export interface AdmittedConnection {
  readonly grant: SessionGrant;
  readonly endpoint: string;
  readonly remoteAddress: string;
  /** Ends the connection after telling the client `reason`; resolves once it is told. Idempotent. */
  close(reason: CloseReason): Promise<void>;
}

/** A console session (serial or VNC) as `GET /v1/sessions` reports it. */
export interface LiveSession {
  readonly id: string;
  readonly virtualMachine: string;
  readonly kind: ConsoleKind;
  readonly path: 'ssh' | 'websocket';
  readonly endpoint: string;
  readonly remoteAddress: string;
  readonly startedAt: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Its part on a shared console; absent: controller (the VM's one session of its kind). */
  readonly role?: SessionRole;
  /** Its client's terminal size, where it said (an SSH pty request). */
  readonly terminal?: { width: number; height: number };
  /** Ends the session after telling the client `reason`; resolves once it is told. Idempotent. */
  close(reason: CloseReason): Promise<void>;
  /** Why it ended, once it has: set by the first `close`; a session that ends without one was left by its client. */
  readonly closeReason?: CloseReason;
}
