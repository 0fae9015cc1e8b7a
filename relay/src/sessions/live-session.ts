import type { SessionGrant } from '../core/console-rules.js';
import type { ConsoleKind } from '../core/session-registry.js';

/** An admitted SSH connection (or, later, WebSocket): what the console rules are re-checked against. */
export interface AdmittedConnection {
  readonly grant: SessionGrant;
  readonly endpoint: string;
  readonly remoteAddress: string;
  /** Ends the connection after telling the client `reason`; resolves once it is told. Idempotent. */
  close(reason: string): Promise<void>;
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
  /** Ends the session after telling the client `reason`; resolves once it is told. Idempotent. */
  close(reason: string): Promise<void>;
}
