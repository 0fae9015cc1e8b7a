import { escapeHelp, type RelayEscape } from '../core/relay-escapes.js';
import type { Logger } from '../logger.js';
import type { RecorderHooks } from '../recordings/recording-service.js';
import type { LiveSession, SessionRole } from './live-session.js';
import type { SessionSupervisor } from './session-supervisor.js';

/** A serial session that can share its console: told things out of band, and switched between controlling and watching. */
export interface SharedSession extends LiveSession {
  readonly role: SessionRole;
  /** A line for its user outside the guest's stream (`[lifeline] …` on SSH stderr). */
  notify(line: string): void;
  /** Switches its byte path: only the controller's input reaches the VM; an observer gets the output and nothing else. */
  setRole(role: SessionRole): void;
}

/** How control moved (the audit event's `how`). */
export type ControlChange = 'approved' | 'handover' | 'forced' | 'vacant';

export const CONTROL_REQUEST_TIMEOUT_MS = 30_000;

interface PendingRequest {
  from: SharedSession;
  timer: NodeJS.Timeout;
}

function isShared(session: LiveSession | undefined): session is SharedSession {
  return session !== undefined && session.kind === 'serial' && typeof (session as Partial<SharedSession>).notify === 'function';
}

/** How a participant is named to the others: short id, address and path (the full id is in GET /v1/sessions). */
export function participantName(session: LiveSession): string {
  return `session ${session.id.slice(0, 8)} (${session.remoteAddress} via ${session.path === 'ssh' ? 'SSH' : 'the browser'})`;
}

/**
 * Who is on each VM's serial console and who controls it. The controller is the VM's serial session
 * in the supervisor's registry (the one a new plain session displaces); observers are registered
 * beside it and never displace anyone. Control moves by request and approval (no answer within
 * 30 s is no), by the controller handing over, or by force through the API; the old controller
 * becomes an observer. Every participant hears of joins, leaves and changes out of band, and every
 * change is an audit event.
 */
export class ConsoleSharing {
  /** Where recordings hear of resizes, input and markers (set once the relay records). */
  recorder: RecorderHooks | undefined;
  private readonly pending = new Map<string, PendingRequest>();
  /** Each VM's observers (kept here, not searched for: a keystroke asks whether its console is shared). */
  private readonly watching = new Map<string, Set<SharedSession>>();

  constructor(
    private readonly supervisor: SessionSupervisor,
    private readonly log: Logger,
    private readonly requestTimeoutMs = CONTROL_REQUEST_TIMEOUT_MS,
  ) {}

  /** Everyone on `vm`'s serial console, controller first, then observers by when they joined. */
  participants(vm: string): SharedSession[] {
    const controller = this.controller(vm);
    const observers = this.observers(vm);
    return controller ? [controller, ...observers] : observers;
  }

  controller(vm: string): SharedSession | undefined {
    const session = this.supervisor.sessions.activeFor(vm, 'serial');
    return isShared(session) ? session : undefined;
  }

  observers(vm: string): SharedSession[] {
    return [...(this.watching.get(vm) ?? [])].sort((a, b) => a.startedAt - b.startedAt);
  }

  private watch(session: SharedSession, watching: boolean): void {
    const vm = session.virtualMachine;
    let set = this.watching.get(vm);
    if (watching) {
      if (!set) this.watching.set(vm, (set = new Set()));
      set.add(session);
    } else if (set?.delete(session) && set.size === 0) {
      this.watching.delete(vm);
    }
  }

  /** Whether anyone besides a controller is on `vm`'s console (the relay's escapes are active then). */
  isShared(vm: string): boolean {
    return this.pending.has(vm) || this.watching.has(vm);
  }

  /** The session asking `vm`'s controller for control now, if any. */
  requester(vm: string): SharedSession | undefined {
    return this.pending.get(vm)?.from;
  }

  private broadcast(vm: string, line: string, except?: SharedSession): void {
    for (const session of this.participants(vm)) if (session !== except) session.notify(line);
  }

  private audit(type: string, details: Record<string, unknown>): void {
    this.supervisor.events?.note(type, details);
  }

  /** Why `vm` cannot take one more observer of `kind` (allowObservers off, maxObservers reached), or undefined. */
  observerRefusal(vm: string, policy: { allowObservers: boolean; maxObservers: number }, kind: 'serial' | 'vnc' = 'serial'): string | undefined {
    if (!policy.allowObservers) return `the console of ${vm} does not allow observers (its owner can allow them: PATCH the console with allowObservers: true, or lifeline console update ${vm} --allow-observers true)`;
    const watching = kind === 'serial' ? this.observers(vm).length : this.supervisor.sessions.list().filter((session) => session.virtualMachine === vm && session.kind === 'vnc' && session.role === 'observer').length;
    if (watching >= policy.maxObservers) return `${vm} already has ${watching} observer${watching === 1 ? '' : 's'}, its limit (maxObservers ${policy.maxObservers}); try again when one leaves`;
    return undefined;
  }

  /** Tells everyone else on the console who joined (the supervisor registered and audited it). */
  joined(session: LiveSession): void {
    if (!isShared(session)) return;
    const vm = session.virtualMachine;
    if (session.role === 'observer') this.watch(session, true);
    const controller = this.controller(vm);
    const watching = this.observers(vm).length;
    if (session.role === 'observer') {
      session.notify(`observing ${vm}: read-only, your typing is not sent. ${controller ? `${participantName(controller)} has control.` : 'Nobody has control.'} Enter ~~? lists the relay escapes`);
      this.broadcast(vm, `${participantName(session)} joined as an observer (${watching} watching)`, session);
      return;
    }
    // A new plain session took the console (the one before was displaced): a request to the old controller is void.
    const pending = this.pending.get(vm);
    if (pending) {
      this.clearRequest(vm);
      pending.from.notify(`${participantName(session)} took control before your request was answered; you are still observing`);
    }
    if (watching > 0) {
      this.broadcast(vm, `${participantName(session)} took control of ${vm}`, session);
      session.notify(`${watching} observer${watching === 1 ? '' : 's'} watch this console; Enter ~~w lists them`);
    }
  }

  /** A participant left (closed, displaced, or its client went away). */
  left(session: LiveSession): void {
    if (!isShared(session)) return;
    const vm = session.virtualMachine;
    this.watch(session, false);
    const pending = this.pending.get(vm);
    if (pending?.from === session) this.clearRequest(vm);
    if (session.role === 'controller' && this.supervisor.sessions.activeFor(vm, 'serial') === undefined) {
      if (pending && pending.from !== session) {
        // The one asking gets the console nobody holds now.
        this.transfer(pending.from, 'vacant');
        return;
      }
      this.broadcast(vm, `${participantName(session)} left; nobody has control (Enter ~~r takes it)`);
    } else if (session.role === 'observer') {
      this.broadcast(vm, `${participantName(session)} stopped observing`);
    }
  }

  /** A relay escape typed by `session` (core/relay-escapes.ts). */
  command(session: SharedSession, command: RelayEscape): void {
    const vm = session.virtualMachine;
    switch (command) {
      case 'help':
        for (const line of escapeHelp(session.role)) session.notify(line);
        return;
      case 'who':
        for (const participant of this.participants(vm)) session.notify(`  ${participant.role === 'controller' ? 'controls' : 'observes'}  ${participantName(participant)}${participant === session ? '  (you)' : ''}`);
        return;
      case 'request':
        return this.request(session);
      case 'approve':
      case 'deny':
      case 'handover':
        return this.answer(session, command);
    }
  }

  private request(session: SharedSession): void {
    const vm = session.virtualMachine;
    if (session.role === 'controller') return session.notify('you have control already');
    const controller = this.controller(vm);
    if (!controller) return this.transfer(session, 'vacant');
    const pending = this.pending.get(vm);
    if (pending) return session.notify(pending.from === session ? 'your request is waiting for an answer' : `${participantName(pending.from)} is asking already; try again once it is answered`);
    const seconds = Math.round(this.requestTimeoutMs / 1000);
    const timer = setTimeout(() => this.refuse(vm, 'timeout'), this.requestTimeoutMs);
    timer.unref();
    this.pending.set(vm, { from: session, timer });
    this.audit('session.control.requested', { session: session.id, virtualMachine: vm, controller: controller.id });
    controller.notify(`${participantName(session)} asks for control: Enter ~~a hands it over, ~~d refuses (no answer in ${seconds} s is no)`);
    session.notify(`asked ${participantName(controller)} for control; waiting up to ${seconds} s`);
  }

  private answer(session: SharedSession, command: 'approve' | 'deny' | 'handover'): void {
    const vm = session.virtualMachine;
    if (session.role !== 'controller') return session.notify('only the controller can answer or hand over; Enter ~~r asks for control');
    const pending = this.pending.get(vm);
    if (command === 'deny') {
      if (!pending) return session.notify('nobody is asking for control');
      return this.refuse(vm, 'refused');
    }
    if (command === 'approve' && !pending) return session.notify('nobody is asking for control; Enter ~~h hands it to the longest-watching observer');
    const target = pending?.from ?? this.observers(vm)[0];
    if (!target) return session.notify('there is no observer to hand control to');
    this.transfer(target, command === 'approve' ? 'approved' : 'handover');
  }

  private refuse(vm: string, why: 'refused' | 'timeout'): void {
    const pending = this.pending.get(vm);
    if (!pending) return;
    this.clearRequest(vm);
    const controller = this.controller(vm);
    this.audit('session.control.denied', { session: pending.from.id, virtualMachine: vm, reason: why, ...(controller && { controller: controller.id }) });
    pending.from.notify(why === 'timeout' ? 'no answer to your request for control; you are still observing' : 'your request for control was refused; you are still observing');
    if (why === 'timeout') controller?.notify(`the request of ${participantName(pending.from)} timed out`);
  }

  private clearRequest(vm: string): void {
    const pending = this.pending.get(vm);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(vm);
  }

  /**
   * Makes `to` the controller of its VM's console; the controller before becomes an observer (it
   * stays connected). `how` and, when forced, the reason and who forced it go to the audit trail.
   */
  transfer(to: SharedSession, how: ControlChange, forced?: { reason: string; actor?: Record<string, unknown> }): void {
    const vm = to.virtualMachine;
    const from = this.controller(vm);
    if (from === to) return;
    this.clearRequest(vm);
    from?.setRole('observer');
    if (from) this.watch(from, true);
    this.watch(to, false);
    this.supervisor.sessions.promote(to);
    to.setRole('controller');
    this.log.info({ vm, session: to.id, from: from?.id, how }, 'console control changed');
    this.audit('session.control.changed', { session: to.id, virtualMachine: vm, ...(from && { from: from.id }), how, ...(forced && { reason: forced.reason, ...(forced.actor && { actor: forced.actor }) }) });
    const why = { approved: 'approved', handover: 'handed over', forced: `forced: ${forced?.reason ?? ''}`, vacant: 'nobody had it' }[how];
    to.notify(`you have control of ${vm} now (${why}); your typing reaches the VM`);
    from?.notify(`${participantName(to)} has control now (${why}); you are observing`);
    for (const observer of this.observers(vm)) if (observer !== from) observer.notify(`${participantName(to)} has control now (${why})`);
  }

  /** Everyone is leaving (relay shutdown): pending requests are dropped. */
  close(): void {
    for (const vm of [...this.pending.keys()]) this.clearRequest(vm);
  }
}
