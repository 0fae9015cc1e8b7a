/**
 * One session per VM and console type. Claiming is synchronous, so in one relay process
 * the decision is atomic: of any number of simultaneous attempts, the last claim holds
 * and every earlier one is handed back to be closed.
 */
export type ConsoleKind = 'serial' | 'vnc';

export interface ClaimableSession {
  readonly id: string;
  readonly virtualMachine: string;
  readonly kind: ConsoleKind;
}

export class SessionRegistry<S extends ClaimableSession> {
  private readonly active = new Map<string, S>();
  private readonly byId = new Map<string, S>();

  private static slot(vm: string, kind: ConsoleKind): string {
    return `${kind}\u0000${vm}`;
  }

  /**
   * Makes `session` the VM's active session of its kind; returns the one it displaces. With
   * `displace` false (a console that decides itself which session holds it: a remote one, by
   * fencing number) the earlier session stays registered until its console ends it.
   */
  claim(session: S, displace = true): S | undefined {
    const slot = SessionRegistry.slot(session.virtualMachine, session.kind);
    const displaced = this.active.get(slot);
    this.active.set(slot, session);
    this.byId.set(session.id, session);
    if (!displace) return undefined;
    if (displaced) this.byId.delete(displaced.id);
    return displaced === session ? undefined : displaced;
  }

  /** Registers a session that takes no slot (an observer): listed and found by id, never displacing. */
  join(session: S): void {
    this.byId.set(session.id, session);
  }

  /** Makes a registered session (an observer taking control) its VM's active one, leaving the one before registered; returns that one. */
  promote(session: S): S | undefined {
    const slot = SessionRegistry.slot(session.virtualMachine, session.kind);
    const previous = this.active.get(slot);
    this.active.set(slot, session);
    this.byId.set(session.id, session);
    return previous === session ? undefined : previous;
  }

  /** Forgets `session` if it is still registered; a displaced session's release is a no-op. */
  release(session: S): void {
    const slot = SessionRegistry.slot(session.virtualMachine, session.kind);
    if (this.active.get(slot) === session) this.active.delete(slot);
    if (this.byId.get(session.id) === session) this.byId.delete(session.id);
  }

  get(id: string): S | undefined {
    return this.byId.get(id);
  }

  activeFor(vm: string, kind: ConsoleKind): S | undefined {
    return this.active.get(SessionRegistry.slot(vm, kind));
  }

  list(): S[] {
    return [...this.byId.values()];
  }

  get size(): number {
    return this.byId.size;
  }
}
