import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SessionRegistry, type ClaimableSession } from './session-registry.js';

const session = (id: string, vm = 'vm1', kind: 'serial' | 'vnc' = 'serial'): ClaimableSession => ({ id, virtualMachine: vm, kind });

test('the last claim wins and hands back the one it displaced', () => {
  const registry = new SessionRegistry();
  const a = session('a');
  const b = session('b');
  assert.equal(registry.claim(a), undefined);
  assert.equal(registry.claim(b), a);
  assert.equal(registry.activeFor('vm1', 'serial'), b);
  assert.deepEqual(registry.list(), [b]);
  registry.release(a); // a displaced session's release changes nothing
  assert.equal(registry.activeFor('vm1', 'serial'), b);
  registry.release(b);
  assert.equal(registry.size, 0);
});

test('serial and VNC, and different VMs, do not displace each other', () => {
  const registry = new SessionRegistry();
  assert.equal(registry.claim(session('s1', 'vm1', 'serial')), undefined);
  assert.equal(registry.claim(session('v1', 'vm1', 'vnc')), undefined);
  assert.equal(registry.claim(session('s2', 'vm2', 'serial')), undefined);
  assert.equal(registry.size, 3);
});

test('of many claims in a row exactly one stays registered', () => {
  const registry = new SessionRegistry();
  const displaced = Array.from({ length: 50 }, (_, i) => registry.claim(session(`s${i}`))).filter(Boolean);
  assert.equal(displaced.length, 49);
  assert.equal(registry.size, 1);
  assert.equal(registry.activeFor('vm1', 'serial')?.id, 's49');
});
