import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../logger.js';
import type { ConsoleDirectory } from '../sessions/console-seam.js';
import { VirtualMachineRegistry } from './virtual-machines.js';

test("the directory's gone events: a discovered VM that goes away or changes channels, each listener once, none after unsubscribing", () => {
  const registry = new VirtualMachineRegistry([{ name: 'static-1', serial: { kind: 'unix', path: '/nonexistent/a.sock' } }], 0, createLogger('silent'));
  const directory: ConsoleDirectory = registry;
  const events: string[] = [];
  const stop = directory.onGone((name, reason) => events.push(`${name}: ${reason}`));
  const other: string[] = [];
  directory.onGone((name) => other.push(name));
  try {
    assert.equal(registry.upsert({ name: 'vm-1', serial: { kind: 'unix', path: '/nonexistent/1.sock' } }, 'libvirt'), 'added');
    assert.equal(registry.upsert({ name: 'vm-1', serial: { kind: 'unix', path: '/nonexistent/1.sock' } }, 'libvirt'), 'unchanged');
    assert.deepEqual(events, [], 'added and unchanged are not gone');
    assert.equal(registry.upsert({ name: 'vm-1', serial: { kind: 'unix', path: '/nonexistent/2.sock' } }, 'libvirt'), 'updated');
    assert.deepEqual(events, ['vm-1: the VM vm-1 changed its console channels (libvirt); reconnect']);
    assert.equal(registry.markGone('vm-1', 'Stopped', 'the VM vm-1 was undefined'), true);
    assert.equal(registry.markGone('vm-1', 'Stopped', 'again'), false, 'gone once');
    assert.equal(registry.markGone('static-1', 'Stopped', 'config VMs do not go'), false);
    assert.deepEqual(events.slice(1), ['vm-1: the VM vm-1 was undefined']);
    stop();
    registry.upsert({ name: 'vm-1', serial: { kind: 'unix', path: '/nonexistent/3.sock' } }, 'libvirt');
    registry.markGone('vm-1', 'Stopped', 'after unsubscribing');
    assert.equal(events.length, 2);
    assert.deepEqual(other, ['vm-1', 'vm-1', 'vm-1']);
  } finally {
    registry.close();
  }
});
