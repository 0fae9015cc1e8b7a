import { revocationMessage, revocationReason, sharingOf, type ConsoleRecord, type SessionGrant } from '../core/console-rules.js';
import { ConsoleSharing } from './console-sharing.js';
import { SessionRegistry } from '../core/session-registry.js';
import type { Logger } from '../logger.js';
import type { AdmittedConnection, CloseReason, LiveSession } from './live-session.js';

/** Where session events go (the audit trail). Called synchronously, in order. */
export interface SessionEvents {
  opened(session: LiveSession, grant: SessionGrant | undefined): void;
  closed(session: LiveSession, reason: CloseReason): void;
  /** Anything else a session did that the trail keeps (control requested, denied, changed). */
  note(type: string, details: Record<string, unknown>): void;
}

export interface ConsoleLookup {
  getConsole(virtualMachine: string): Promise<ConsoleRecord | undefined>;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const EXPIRY_RETRY_MS = 1000;

/**
 * Owns every admitted connection and console session: enforces one session per VM and
 * kind, and closes connections whose console was disabled, deleted, re-keyed or expired.
 */
export class SessionSupervisor {
  readonly sessions = new SessionRegistry<LiveSession>();
  private readonly connections = new Set<AdmittedConnection>();
  /** Expiration last seen for each VM with admitted connections, to wake up when the earliest passes. */
  private readonly expirations = new Map<string, number>();
  private expiryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Sessions whose `opened` event went out, so each gets exactly one `closed`. */
  private readonly reported = new WeakSet<LiveSession>();
  events: SessionEvents | undefined;
  /** Who is on each shared serial console and who controls it. */
  readonly sharing: ConsoleSharing;

  constructor(
    private readonly consoles: ConsoleLookup,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    controlRequestTimeoutMs?: number,
  ) {
    this.sharing = new ConsoleSharing(this, log, controlRequestTimeoutMs);
  }

  admit(connection: AdmittedConnection, expiration: number): void {
    this.connections.add(connection);
    this.noteExpiration(connection.grant.virtualMachine, expiration);
  }

  forget(connection: AdmittedConnection): void {
    this.connections.delete(connection);
  }

  /** The VMs with admitted connections now. */
  connectedVms(): string[] {
    return [...new Set([...this.connections].map((connection) => connection.grant.virtualMachine))];
  }

  /**
   * Registers `session` as its VM's session of its kind, closing the one it displaces. A console
   * that keeps one session itself (`console.keepsOneSession`: a remote console, where the fleet's
   * fencing number decides across gateways) closes the displaced one with the reason instead.
   */
  claim(session: LiveSession, grant?: SessionGrant, console?: { keepsOneSession?: boolean }): void {
    this.reported.add(session);
    this.events?.opened(session, grant);
    const displaced = this.sessions.claim(session, !console?.keepsOneSession);
    if (displaced) {
      this.log.info({ vm: session.virtualMachine, session: displaced.id, by: session.id }, 'session displaced');
      // Who took over, so the displaced user can tell a colleague from an intruder (the full id is in GET /v1/sessions and the trail).
      const by = `session ${session.id.slice(0, 8)} from ${session.remoteAddress} via ${session.path === 'ssh' ? 'SSH' : 'the browser'}`;
      this.closeQuietly(displaced, { code: 'displaced', message: `another session was opened for ${session.virtualMachine} (${by})`, by: session.id });
    }
    this.sharing.joined(session);
  }

  /** Registers an observer of its VM's console: it takes no slot and displaces nobody. */
  join(session: LiveSession, grant?: SessionGrant): void {
    this.reported.add(session);
    this.events?.opened(session, grant);
    this.sessions.join(session);
    this.sharing.joined(session);
  }

  /** A session ended (closed by the relay, or left by its client). */
  release(session: LiveSession): void {
    const wasRegistered = this.sessions.get(session.id) === session;
    this.sessions.release(session);
    if (this.reported.delete(session)) this.events?.closed(session, session.closeReason ?? { code: 'client-left', message: 'the client closed the session' });
    if (wasRegistered) this.sharing.left(session);
  }

  /** Re-checks every connection to `virtualMachine` against its console now; call after any console change. */
  async revalidate(virtualMachine: string): Promise<void> {
    const current = await this.consoles.getConsole(virtualMachine);
    const now = this.now();
    for (const connection of this.connections) {
      if (connection.grant.virtualMachine !== virtualMachine) continue;
      const reason = revocationReason(connection.grant, current, now);
      if (reason) {
        this.log.info({ vm: virtualMachine, reason }, 'closing connection: console no longer admits it');
        this.connections.delete(connection);
        this.closeQuietly(connection, { code: reason, message: revocationMessage(reason, virtualMachine) });
      }
    }
    // Observers stay only while the console allows them.
    if (current && !sharingOf(current).allowObservers) {
      for (const session of this.sessions.list()) {
        if (session.virtualMachine === virtualMachine && session.role === 'observer') this.closeQuietly(session, { code: 'observers-disallowed', message: `the console for ${virtualMachine} no longer allows observers` });
      }
    }
    const stillConnected = [...this.connections].some((c) => c.grant.virtualMachine === virtualMachine);
    if (current && stillConnected) this.noteExpiration(virtualMachine, current.expiration);
    else this.expirations.delete(virtualMachine);
  }

  /** Closes every connection matching `predicate` (an endpoint going away, a source no longer allowed). */
  closeConnections(predicate: (connection: AdmittedConnection) => boolean, reason: CloseReason): number {
    let count = 0;
    for (const connection of [...this.connections]) {
      if (!predicate(connection)) continue;
      this.connections.delete(connection);
      this.closeQuietly(connection, reason);
      count++;
    }
    return count;
  }

  closeSession(id: string, reason: CloseReason): boolean {
    const session = this.sessions.get(id);
    if (!session) return false;
    this.closeQuietly(session, reason);
    this.release(session);
    return true;
  }

  private noteExpiration(virtualMachine: string, expiration: number): void {
    this.expirations.set(virtualMachine, expiration);
    this.armExpiryTimer();
  }

  private armExpiryTimer(): void {
    clearTimeout(this.expiryTimer);
    if (this.closed || this.expirations.size === 0) return;
    const earliest = Math.min(...this.expirations.values());
    const delay = Math.max(0, Math.min(MAX_TIMER_MS, earliest - this.now() + 5));
    this.expiryTimer = setTimeout(() => {
      this.onExpiryTimer().catch((error: unknown) => {
        // The store failed: try again shortly rather than leave expired consoles open.
        this.log.error({ err: (error as Error).message }, 'console expiry check failed; retrying');
        this.retryExpiryCheck();
      });
    }, delay);
    this.expiryTimer.unref();
  }

  private retryExpiryCheck(): void {
    if (this.closed) return;
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => this.armExpiryTimer(), EXPIRY_RETRY_MS);
    this.expiryTimer.unref();
  }

  /** Runs `revalidate` from an event handler: a failing store is logged, never an unhandled rejection. */
  revalidateInBackground(virtualMachine: string): void {
    this.revalidate(virtualMachine).catch((error: unknown) => this.log.error({ vm: virtualMachine, err: (error as Error).message }, 'console re-check failed'));
  }

  private closeQuietly(closable: { close(reason: CloseReason): Promise<void> }, reason: CloseReason): void {
    closable.close(reason).catch((error: unknown) => this.log.warn({ err: (error as Error).message }, 'closing a session failed'));
  }

  private async onExpiryTimer(): Promise<void> {
    const now = this.now();
    const due = [...this.expirations].filter(([, expiration]) => expiration <= now).map(([vm]) => vm);
    const stillConnected = new Set([...this.connections].map((c) => c.grant.virtualMachine));
    for (const vm of due) {
      // Forgotten only once checked, so a store failure leaves the VM due for the retry.
      if (stillConnected.has(vm)) await this.revalidate(vm);
      else this.expirations.delete(vm);
    }
    this.armExpiryTimer();
  }

  /** Closes everything (relay shutdown); resolves once every client was told why. */
  async closeAll(reason: CloseReason): Promise<void> {
    this.closed = true;
    this.sharing.close();
    clearTimeout(this.expiryTimer);
    const closing = [...this.sessions.list().map((session) => session.close(reason)), ...[...this.connections].map((connection) => connection.close(reason))];
    this.connections.clear();
    await Promise.all(closing);
  }
}
