import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
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
    const metrics = await (await fetch(`${relay.apiUrl}/metrics`, { headers: { authorization: `Bearer ${relay.token}` } })).text();
    assert.match(metrics, /^lifeline_store_write_failures_total [1-9]|^lifeline_audit_writable 0$/m, 'the disk trouble shows in the metrics');
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

/**
 * The store's disk turned read-only under a running relay, as a failing disk does: an ext4 file
 * system on a loop device, mounted `errors=remount-ro`, and an error triggered through ext4's
 * sysfs `trigger_fs_error`, so the kernel remounts it read-only (emergency_ro) with the relay's
 * files open. Changes are refused with a 503 and a code; reads, the live session and new sessions
 * go on; after e2fsck and a remount, the relay starts on the same folder with everything written
 * before the fault, the store passes SQLite's integrity check and the audit trail verifies.
 */
describe('the store\'s disk turned read-only: 503 with a code, sessions go on, nothing corrupted after repair', () => {
  let relay: RelayProcess | undefined;
  let fake: FakeConsole;
  let loop: string | undefined;
  let mounted = false;
  const tmp = tempDir('store-ro');
  const image = join(tmp.path, 'disk.img');
  const disk = join(tmp.path, 'disk');
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'this test mounts a loop device: run it as root (CI does)');
    mkdirSync(disk);
    execFileSync('truncate', ['-s', '64M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image]);
    loop = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
    execFileSync('mount', ['-o', 'errors=remount-ro', loop, disk]);
    mounted = true;
    fake = await startFakeConsole(join(tmp.path, 'vm.sock'), 1024, true);
  });

  after(() =>
    runCleanups([
      ...cleanups.reverse(),
      () => relay?.stop(),
      () => fake?.close(),
      () => mounted && execFileSync('umount', ['-l', disk]),
      () => loop && execFileSync('losetup', ['-d', loop]),
      tmp.dispose,
    ]),
  );

  test('read-only: changes get 503 with a code and nothing half-written; reads and sessions go on; repaired: the relay starts with its data, integrity ok, the trail verifies', async () => {
    // The config lives off the failing disk (as /etc would); the data folder on it.
    const dataDir = join(disk, 'relay-data');
    const files = { ...ephemeralConfig(tmp.path, 'relay', { dataDir, virtualMachines: [{ name: 'vm1', serial: fake.path }, { name: 'vm2', serial: fake.path }] }), dataDir };
    relay = await startRelay(files.configPath, files.dataDir);
    const key = generateKey(tmp.path, 'key');
    const consoles: Record<string, any> = {};
    for (const vm of ['vm1', 'vm2']) {
      const created = await relay.api('PUT', `/v1/virtualMachines/${vm}/console`, { enabled: true, sshPublicKey: { keyData: key.publicKey } });
      assert.equal(created.status, 201);
      consoles[vm] = created.body;
    }
    const token = await relay.api('POST', '/v1/tokens', { name: 'before-the-fault', scopes: ['consoles:read'] });
    assert.equal(token.status, 201);
    const { client, shell } = await openSsh2Shell({ port: relay.sshPort, user: consoles.vm1.virtualMachineAccessId, privateKey: readFileSync(key.privateKeyPath) });
    cleanups.push(() => client.end());
    let echoed = '';
    shell.on('data', (chunk: Buffer) => (echoed += chunk.toString('latin1')));

    const device = loop!.replace('/dev/', '');
    writeFileSync(`/sys/fs/ext4/${device}/trigger_fs_error`, '1');
    await waitUntil(() => /\bemergency_ro\b|\bro\b/.test(readFileSync('/proc/mounts', 'utf8').split('\n').find((line) => line.includes(` ${disk} `)) ?? ''), 5000, 'the file system to turn read-only');

    const before = (await relay.api('GET', '/v1/virtualMachines/vm1/console')).body;
    const attempts: Array<[string, string, unknown]> = [
      ['PATCH', '/v1/virtualMachines/vm1/console', { enabled: false }],
      ['PUT', '/v1/virtualMachines/vm2/console', { enabled: true, sshPublicKey: { keyData: key.publicKey }, expiration: new Date(Date.now() + 3_600_000).toISOString() }],
      ['POST', '/v1/tokens', { name: 'during-the-fault', scopes: ['metrics'] }],
    ];
    for (const [method, path, body] of attempts) {
      const refused = await relay.api(method, path, body);
      assert.equal(refused.status, 503, `${method} ${path}: ${JSON.stringify(refused.body)}`);
      assert.match(refused.body.error.code, /^(StoreUnavailable|AuditUnavailable)$/);
      assert.match(refused.body.error.message, /read-only|cannot be written/);
    }
    assert.deepEqual((await relay.api('GET', '/v1/virtualMachines/vm1/console')).body, before, 'nothing changed, and reads still work');
    // What an operator's alert sees.
    const metrics = await (await fetch(`${relay.apiUrl}/metrics`, { headers: { authorization: `Bearer ${relay.token}` } })).text();
    assert.match(metrics, /^lifeline_store_write_failures_total [1-9]|^lifeline_audit_writable 0$/m, metrics.split('\n').filter((line) => /store_write|audit_writable/.test(line)).join('\n'));
    assert.deepEqual(((await relay.api('GET', '/v1/tokens')).body.value as Array<{ name: string }>).map((t) => t.name).sort(), ['admin', 'before-the-fault']);
    shell.write('during-ro\r');
    await waitUntil(() => echoed.includes('during-ro'), 5000, 'the live session echoes while the disk is read-only');
    // Console access is what the relay is for: a new session on another VM still opens (its audit event cannot be written: logged).
    const second = await openSsh2Shell({ port: relay.sshPort, user: consoles.vm2.virtualMachineAccessId, privateKey: readFileSync(key.privateKeyPath) });
    cleanups.push(() => second.client.end());
    let echoed2 = '';
    second.shell.on('data', (chunk: Buffer) => (echoed2 += chunk.toString('latin1')));
    second.shell.write('second-during-ro\r');
    await waitUntil(() => echoed2.includes('second-during-ro'), 5000, 'a new session echoes while the disk is read-only');
    assert.match(relay.output(), /cannot write the audit trail/, 'the lost session event is in the log');

    second.client.end();
    client.end();
    const code = await relay.stop();
    assert.notEqual(code, null, 'the relay exits on SIGTERM with its disk read-only (not killed after 15 s)');
    relay = undefined;

    // The repair an operator does: unmount, fsck, mount again; then the same relay folder.
    execFileSync('umount', [disk]);
    const fsck = spawnSync('e2fsck', ['-f', '-y', loop!], { encoding: 'utf8' });
    assert.ok(fsck.status === 0 || fsck.status === 1, `e2fsck: ${fsck.status} ${fsck.stdout}${fsck.stderr}`);
    execFileSync('mount', ['-o', 'errors=remount-ro', loop!, disk]);
    const db = new Database(join(files.dataDir, 'lifeline.db'), { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }) as string, 'ok');
    } finally {
      db.close();
    }
    const verify = spawnSync(process.execPath, [RELAY_BIN, 'audit', 'verify', '--config', files.configPath], { encoding: 'utf8' });
    assert.equal(verify.status, 0, `${verify.stdout}${verify.stderr}`);
    relay = await startRelay(files.configPath, files.dataDir);
    const after = (await relay.api('GET', '/v1/virtualMachines/vm1/console')).body;
    assert.equal(after.virtualMachineAccessId, before.virtualMachineAccessId, `${JSON.stringify(after)}\n${relay.output().slice(-3000)}`);
    assert.equal(after.enabled, true);
    assert.deepEqual(((await relay.api('GET', '/v1/tokens')).body.value as Array<{ name: string }>).map((t) => t.name).sort(), ['admin', 'before-the-fault']);
    const patched = await relay.api('PATCH', '/v1/virtualMachines/vm1/console', { enabled: false });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
  });
});
