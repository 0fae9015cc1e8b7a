import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { createLogger } from '../logger.js';
import type { CloseReason, SessionRole } from './live-session.js';
import type { SharedSession } from './console-sharing.js';
import { SessionSupervisor } from './session-supervisor.js';

const log = createLogger('silent');

/** A participant as the sharing logic sees one: its role and what it was told. */
class FakeParticipant implements SharedSession {
  readonly id = randomUUID();
  readonly kind = 'serial' as const;
  readonly path = 'ssh' as const;
  readonly endpoint = 'default';
  readonly startedAt: number;
  readonly bytesIn = 0;
  readonly bytesOut = 0;
  readonly told: string[] = [];
  closeReason: CloseReason | undefined;
  constructor(
    readonly remoteAddress: string,
    public role: SessionRole,
    private readonly supervisor: SessionSupervisor,
    startedAt: number,
    readonly virtualMachine = 'vm1',
  ) {
    this.startedAt = startedAt;
  }
  notify(line: string): void {
    this.told.push(line);
  }
  setRole(role: SessionRole): void {
    this.role = role;
  }
  async close(reason: CloseReason): Promise<void> {
    this.closeReason = reason;
    this.supervisor.release(this);
  }
}

function setUp(timeoutMs = 30_000): { supervisor: SessionSupervisor; trail: Array<{ type: string } & Record<string, unknown>>; join: (address: string, role: SessionRole) => FakeParticipant } {
  const supervisor = new SessionSupervisor({ getConsole: async () => undefined }, log, Date.now, timeoutMs);
  const trail: Array<{ type: string } & Record<string, unknown>> = [];
  supervisor.events = {
    opened: (session) => void trail.push({ type: 'session.opened', session: session.id, role: session.role }),
    closed: (session, reason) => void trail.push({ type: 'session.closed', session: session.id, reason: reason.code }),
    note: (type, details) => void trail.push({ type, ...details }),
  };
  let clock = 0;
  const join = (address: string, role: SessionRole): FakeParticipant => {
    const session = new FakeParticipant(address, role, supervisor, ++clock);
    if (role === 'controller') supervisor.claim(session);
    else supervisor.join(session);
    return session;
  };
  return { supervisor, trail, join };
}

test('request then approve: the observer controls, the controller observes; both told, audited in order', () => {
  const { supervisor, trail, join } = setUp();
  const owner = join('10.0.0.1', 'controller');
  const colleague = join('10.0.0.2', 'observer');
  assert.match(owner.told.at(-1)!, /joined as an observer \(1 watching\)/);
  assert.match(colleague.told[0]!, /observing vm1: read-only/);
  supervisor.sharing.command(colleague, 'request');
  assert.match(owner.told.at(-1)!, /asks for control: Enter ~~a hands it over, ~~d refuses/);
  assert.equal(supervisor.sharing.requester('vm1'), colleague);
  supervisor.sharing.command(owner, 'approve');
  assert.equal(colleague.role, 'controller');
  assert.equal(owner.role, 'observer');
  assert.equal(supervisor.sessions.activeFor('vm1', 'serial'), colleague, 'the registry slot moved');
  assert.equal(supervisor.sessions.list().length, 2, 'nobody was disconnected');
  assert.match(colleague.told.at(-1)!, /you have control of vm1 now \(approved\)/);
  assert.deepEqual(
    trail.map((event) => [event.type, event.session, event.how ?? event.role]),
    [
      ['session.opened', owner.id, 'controller'],
      ['session.opened', colleague.id, 'observer'],
      ['session.control.requested', colleague.id, undefined],
      ['session.control.changed', colleague.id, 'approved'],
    ],
  );
  assert.equal(trail[3]!.from, owner.id);
});

test('request then deny, and request then no answer (timeout): the observer stays one; each is audited with why', async () => {
  const { supervisor, trail, join } = setUp(50);
  const owner = join('10.0.0.1', 'controller');
  const colleague = join('10.0.0.2', 'observer');
  supervisor.sharing.command(colleague, 'request');
  supervisor.sharing.command(colleague, 'request');
  assert.match(colleague.told.at(-1)!, /your request is waiting/);
  supervisor.sharing.command(owner, 'deny');
  assert.match(colleague.told.at(-1)!, /refused; you are still observing/);
  supervisor.sharing.command(colleague, 'request');
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.match(colleague.told.at(-1)!, /no answer/);
  assert.equal(colleague.role, 'observer');
  assert.deepEqual(
    trail.filter((event) => event.type.startsWith('session.control')).map((event) => [event.type, event.reason]),
    [
      ['session.control.requested', undefined],
      ['session.control.denied', 'refused'],
      ['session.control.requested', undefined],
      ['session.control.denied', 'timeout'],
    ],
  );
});

test('hand-over goes to the longest-watching observer; force (the API) takes control with a reason; an observer cannot answer', () => {
  const { supervisor, trail, join } = setUp();
  const owner = join('10.0.0.1', 'controller');
  const first = join('10.0.0.2', 'observer');
  const second = join('10.0.0.3', 'observer');
  supervisor.sharing.command(first, 'approve');
  assert.match(first.told.at(-1)!, /only the controller/);
  supervisor.sharing.command(owner, 'handover');
  assert.equal(first.role, 'controller');
  supervisor.sharing.transfer(second, 'forced', { reason: 'incident 42', actor: { tokenId: 't1', tokenName: 'ops' } });
  assert.equal(second.role, 'controller');
  assert.equal(first.role, 'observer');
  assert.match(first.told.at(-1)!, /has control now \(forced: incident 42\); you are observing/);
  const changes = trail.filter((event) => event.type === 'session.control.changed');
  assert.deepEqual(changes.map((event) => [event.session, event.from, event.how, event.reason]), [
    [first.id, owner.id, 'handover', undefined],
    [second.id, first.id, 'forced', 'incident 42'],
  ]);
  assert.deepEqual(changes[1]!.actor, { tokenId: 't1', tokenName: 'ops' });
});

test('observers are limited and refused with a reason; the controller leaving lets the asker take control; a new plain session voids the request', async () => {
  const { supervisor, join } = setUp();
  assert.match(supervisor.sharing.observerRefusal('vm1', { allowObservers: false, maxObservers: 4 }) ?? '', /does not allow observers/);
  const owner = join('10.0.0.1', 'controller');
  const observers = [1, 2].map((n) => join(`10.0.0.${n + 1}`, 'observer'));
  assert.match(supervisor.sharing.observerRefusal('vm1', { allowObservers: true, maxObservers: 2 }) ?? '', /already has 2 observers, its limit \(maxObservers 2\)/);
  assert.equal(supervisor.sharing.observerRefusal('vm1', { allowObservers: true, maxObservers: 3 }), undefined);
  supervisor.sharing.command(observers[0]!, 'request');
  const intruder = join('10.0.0.9', 'controller');
  assert.equal(owner.closeReason?.code, 'displaced', 'a plain session still displaces the controller');
  assert.ok(observers[0]!.told.some((line) => /took control before your request was answered/.test(line)), observers[0]!.told.join('\n'));
  assert.equal(supervisor.sharing.requester('vm1'), undefined);
  supervisor.sharing.command(observers[1]!, 'request');
  await intruder.close({ code: 'client-left', message: 'gone' });
  assert.equal(observers[1]!.role, 'controller', 'the one asking gets the console nobody holds');
  await observers[1]!.close({ code: 'client-left', message: 'gone' });
  assert.match(observers[0]!.told.at(-1)!, /nobody has control/);
  supervisor.sharing.command(observers[0]!, 'request');
  assert.equal(observers[0]!.role, 'controller', 'a request with nobody in control is granted at once');
});
