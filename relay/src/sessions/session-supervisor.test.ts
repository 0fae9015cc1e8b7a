import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConsoleRecord } from '../core/console-rules.js';
import { createLogger } from '../logger.js';
import type { AdmittedConnection } from './live-session.js';
import { SessionSupervisor } from './session-supervisor.js';

const log = createLogger('silent');

function record(expiration: number): ConsoleRecord {
  return { virtualMachine: 'vm1', enabled: true, keyData: 'k', keyFingerprint: 'SHA256:a', expiration, accessId: 'id', createdAt: 0, updatedAt: 0 };
}

function connection(closed: string[]): AdmittedConnection {
  return { grant: { virtualMachine: 'vm1', accessId: 'id', keyFingerprint: 'SHA256:a' }, endpoint: 'default', remoteAddress: '127.0.0.1', close: async (reason) => void closed.push(reason.message) };
}

/** Fails the test on any unhandled rejection while `body` runs (the process would otherwise die in production). */
async function withoutUnhandledRejections(body: () => Promise<void>): Promise<void> {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown): void => void seen.push(reason);
  process.on('unhandledRejection', onRejection);
  try {
    await body();
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    process.off('unhandledRejection', onRejection);
  }
  assert.deepEqual(seen, []);
}

test('an expiry check whose store fails is retried, not an unhandled rejection, and closes the session once the store is back', async () => {
  await withoutUnhandledRejections(async () => {
    let failing = true;
    const expiration = Date.now() + 30;
    const supervisor = new SessionSupervisor({ getConsole: async () => (failing ? Promise.reject(new Error('database is locked')) : record(expiration)) }, log);
    const closed: string[] = [];
    supervisor.admit(connection(closed), expiration);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(closed, [], 'nothing closed while the store fails');
    failing = false;
    const deadline = Date.now() + 3000;
    while (closed.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(closed, ['the console for vm1 expired']);
    await supervisor.closeAll({ code: 'shutdown', message: 'test over' });
  });
});

test('a background re-check whose store fails is logged, not an unhandled rejection', async () => {
  await withoutUnhandledRejections(async () => {
    const supervisor = new SessionSupervisor({ getConsole: async () => Promise.reject(new Error('disk I/O error')) }, log);
    supervisor.admit(connection([]), Date.now() + 60_000);
    supervisor.revalidateInBackground('vm1');
    await supervisor.closeAll({ code: 'shutdown', message: 'test over' });
  });
});

test('a session whose close fails does not become an unhandled rejection when it is displaced or closed by an administrator', async () => {
  await withoutUnhandledRejections(async () => {
    const supervisor = new SessionSupervisor({ getConsole: async () => undefined }, log);
    const failing = (id: string) => ({ id, virtualMachine: 'vm1', kind: 'serial' as const, path: 'ssh' as const, endpoint: 'default', remoteAddress: '127.0.0.1', startedAt: 0, bytesIn: 0, bytesOut: 0, close: async () => Promise.reject(new Error('channel gone')) });
    supervisor.claim(failing('a'));
    supervisor.claim(failing('b'));
    assert.equal(supervisor.closeSession('b', { code: 'closed-by-admin', message: 'closed by an administrator' }), true);
  });
});
