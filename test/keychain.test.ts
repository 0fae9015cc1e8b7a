import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KeychainStatus } from '../preload/contract.js';
import { FallbackKeychain, MemoryKeychain, type Keychain } from '../main/services/keychain.js';

/** An OS keychain that works until `fail` is set, then rejects (or never answers) every call. */
function flakyKeychain(): Keychain & { fail?: 'error' | 'hang' } {
  const inner = new MemoryKeychain();
  const keychain: Keychain & { fail?: 'error' | 'hang' } = {
    get: (account) => guard(() => inner.get(account)),
    set: (account, secret) => guard(() => inner.set(account, secret)),
    delete: (account) => guard(() => inner.delete(account)),
    accounts: () => guard(() => inner.accounts()),
  };
  function guard<T>(call: () => Promise<T>): Promise<T> {
    if (keychain.fail === 'error') return Promise.reject(new Error('Cannot autolaunch D-Bus without X11 $DISPLAY'));
    if (keychain.fail === 'hang') return new Promise(() => undefined);
    return call();
  }
  return keychain;
}

test('a working OS keychain is used and reported as such', async () => {
  const os = flakyKeychain();
  const statuses: KeychainStatus[] = [];
  const keychain = new FallbackKeychain(os, (s) => statuses.push(s));
  assert.equal((await keychain.probe()).mode, 'os');
  await keychain.set('token:r1', 'llt_secret');
  assert.equal(await os.get('token:r1'), 'llt_secret');
  assert.deepEqual(statuses, []);
});

test('an unreachable keychain: secrets go to memory, once, with the cause named', async () => {
  const os = flakyKeychain();
  os.fail = 'error';
  const statuses: KeychainStatus[] = [];
  const keychain = new FallbackKeychain(os, (s) => statuses.push(s));
  const status = await keychain.probe();
  assert.equal(status.mode, 'memory');
  assert.match(status.message, /No OS keychain \(Cannot autolaunch D-Bus without X11 \$DISPLAY\)/);
  assert.match(status.message, /new key at the next start/);
  assert.match(status.message, /API token entered again/);
  await keychain.set('key:r1:vm', 'PRIVATE');
  assert.equal(await keychain.get('key:r1:vm'), 'PRIVATE');
  assert.deepEqual(await keychain.accounts(), ['key:r1:vm']);
  assert.equal(await keychain.delete('key:r1:vm'), true);
  assert.equal(statuses.length, 1, 'told once');
});

test('a keychain that fails mid-run or never answers falls back for the rest of the run', async () => {
  const os = flakyKeychain();
  const statuses: KeychainStatus[] = [];
  const keychain = new FallbackKeychain(os, (s) => statuses.push(s), 200);
  await keychain.probe();
  await keychain.set('token:r1', 'kept-in-os');
  os.fail = 'hang';
  const started = Date.now();
  assert.equal(await keychain.get('token:r1'), undefined, 'the OS copy is out of reach now');
  assert.ok(Date.now() - started < 2000);
  assert.match(statuses[0]!.message, /did not answer within 0.2 s/);
  os.fail = undefined;
  await keychain.set('token:r2', 'memory only');
  assert.equal(await os.get('token:r2'), undefined, 'nothing goes back to the OS keychain after the fallback');
  assert.equal(await keychain.get('token:r2'), 'memory only');
});
