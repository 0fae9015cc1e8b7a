import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { startFakeConsole, type FakeConsole } from '../bench/fake-console.js';
import { runCleanups } from '../helpers/cleanup.js';
import { generateKey, type KeyPair } from '../helpers/openssh.js';
import { openSsh2Shell } from '../helpers/ssh2-shell.js';
import { ephemeralConfig, RELAY_BIN, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/** Fills the file system holding `dir` until it refuses another byte; returns the filler's path. */
function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  // The last partial block too.
  const small = openSync(filler, 'a');
  try {
    for (;;) writeSync(small, Buffer.alloc(512));
  } catch {
    // full
  } finally {
    closeSync(small);
  }
  return filler;
}

/**
 * The store's disk full, on a real (small tmpfs) file system: changes are refused with a 503 and
 * a code, reads and live sessions go on, and once there is room again the relay writes, the store
 * passes SQLite's integrity check and the audit trail verifies. Needs root (mount), as CI has.
 */
describe('the store\'s disk full: 503 with a code, sessions go on, nothing corrupted after recovery', () => {
  let relay: RelayProcess;
  let key: KeyPair;
  let fake: FakeConsole;
  let mounted = false;
  let config: string;
  const tmp = tempDir('store-faults');
  const disk = join(tmp.path, 'disk');
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'this test mounts a tmpfs: run it as root (CI does)');
    mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'tmpfs', disk]);
    mounted = true;
    fake = await startFakeConsole(join(tmp.path, 'vm.sock'), 1024);
    const files = ephemeralConfig(disk, 'relay', { virtualMachines: [{ name: 'vm1', serial: join(tmp.path, 'vm.sock') }] });
    config = files.configPath;
    relay = await startRelay(files.configPath, files.dataDir);
    key = generateKey(tmp.path, 'key');
  });

  after(() =>
    runCleanups([
      ...cleanups.reverse(),
      () => relay?.stop(),
      () => fake?.close(),
      () => mounted && execFileSync('umount', ['-l', disk]),
      tmp.dispose,
    ]),
  );

  test('full: PUT and PATCH get 503 with a code and change nothing; GET and the live session go on; freed: all works and verifies', async () => {
    const created = await relay.api('PUT', '/v1/virtualMachines/vm1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(created.status, 201);
    const { client, shell } = await openSsh2Shell({ port: relay.sshPort, user: created.body.virtualMachineAccessId, privateKey: readFileSync(key.privateKeyPath) });
    cleanups.push(() => client.end());
    let echoed = '';
    shell.on('data', (chunk: Buffer) => (echoed += chunk.toString('latin1')));

    const filler = fillDisk(disk);
    assert.ok(statfsSync(disk).bavail <= 1, 'the disk is full');
    const before = (await relay.api('GET', '/v1/virtualMachines/vm1/console')).body;
    for (const [method, body] of [['PATCH', { enabled: false }], ['PUT', { enabled: true, sshPublicKey: { keyData: key.publicKey }, expiration: new Date(Date.now() + 3_600_000).toISOString() }]] as const) {
      const refused = await relay.api(method, '/v1/virtualMachines/vm1/console', body);
      assert.equal(refused.status, 503, `${method}: ${JSON.stringify(refused.body)}`);
      assert.match(refused.body.error.code, /^(StoreUnavailable|AuditUnavailable)$/);
      assert.match(refused.body.error.message, /disk full or read-only/);
    }
    assert.deepEqual((await relay.api('GET', '/v1/virtualMachines/vm1/console')).body, before, 'nothing changed, and reads still work');
    shell.write('during-full\r');
    await waitUntil(() => echoed.includes('during-full'), 5000, 'the live session echoes while the disk is full');

    rmSync(filler);
    const patched = await relay.api('PATCH', '/v1/virtualMachines/vm1/console', { expiration: new Date(Date.now() + 7_200_000).toISOString() });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    shell.write('after-full\r');
    await waitUntil(() => echoed.includes('after-full'), 5000, 'the session still echoes after recovery');
    client.end();
    await relay.stop();

    const db = new Database(join(disk, 'relay-data', 'lifeline.db'), { readonly: true });
    try {
      assert.equal((db.pragma('integrity_check', { simple: true }) as string), 'ok');
    } finally {
      db.close();
    }
    const verify = spawnSync(process.execPath, [RELAY_BIN, 'audit', 'verify', '--config', config], { encoding: 'utf8' });
    assert.equal(verify.status, 0, `${verify.stdout}${verify.stderr}`);
  });
});
