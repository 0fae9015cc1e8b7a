import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { RELAY_BIN, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';

/*
 * The relay's secrets and files (issue 24, part 4): a data folder other users can write or own
 * is refused with the chmod/chown that fixes it; a config that is not a regular file is refused
 * instead of blocking; LIFELINE_ADMIN_TOKEN must be long and not a placeholder.
 */
const tmp = tempDir('datadir');
let relay: RelayProcess | undefined;
let counter = 0;

function configFor(dataDir: string): string {
  const path = join(tmp.path, `relay-${++counter}.json`);
  writeFileSync(path, JSON.stringify({ dataDir, api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, virtualMachines: [] }));
  return path;
}

function serve(configPath: string, env: Record<string, string> = {}): { status: number | null; output: string; ms: number } {
  const started = Date.now();
  const result = spawnSync(process.execPath, [RELAY_BIN, 'serve', '--config', configPath], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
  return { status: result.status, output: result.stderr + result.stdout, ms: Date.now() - started };
}

describe('data folder modes, config file kinds and the admin token from the environment', () => {
  after(async () => {
    await relay?.stop();
    tmp.dispose();
  });

  test('a data folder other users can write, with files in it, is refused with the chmod that fixes it; nothing is written', () => {
    const dataDir = join(tmp.path, 'open');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o777);
    // What an attacker plants: the admin token's name pointing at a file they can read.
    writeFileSync(join(tmp.path, 'loot'), '');
    symlinkSync(join(tmp.path, 'loot'), join(dataDir, 'admin.token'));
    const result = serve(configFor(dataDir));
    assert.equal(result.status, 1, result.output);
    assert.match(result.output, new RegExp(`dataDir ${dataDir} has mode 0777: other users can create and replace files in it.*Fix: chmod 700 ${dataDir}`));
    assert.equal(readFileSync(join(tmp.path, 'loot'), 'utf8'), '', 'no secret went through the planted link');
    assert.equal(statSync(dataDir).mode & 0o777, 0o777, 'the operator\'s folder is left as it was');
  });

  test('an empty data folder of the relay\'s own with a loose mode is tightened to 0700 and used', async () => {
    const dataDir = join(tmp.path, 'fresh');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o777);
    relay = await startRelay(configFor(dataDir), dataDir);
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dataDir, 'admin.token')).mode & 0o777, 0o600);
    await relay.stop();
    relay = undefined;

    // A secret file another user can read is refused by name, with its chmod.
    chmodSync(join(dataDir, 'admin.token'), 0o644);
    const loose = serve(configFor(dataDir));
    assert.equal(loose.status, 1, loose.output);
    assert.match(loose.output, new RegExp(`${join(dataDir, 'admin.token')} has mode 0644: other users can read this secret\\. Fix: chmod 600`));
    chmodSync(join(dataDir, 'admin.token'), 0o600);
    chmodSync(join(dataDir, 'ssh_host_ed25519_key'), 0o640);
    assert.match(serve(configFor(dataDir)).output, /ssh_host_ed25519_key has mode 0640: other users can read this secret/);
  });

  test('a data folder owned by another user is refused with the chown that fixes it', { skip: process.getuid?.() !== 0 ? 'needs root to give a folder to another user' : false }, () => {
    const dataDir = join(tmp.path, 'theirs');
    mkdirSync(dataDir, { mode: 0o700 });
    chownSync(dataDir, 65534, 65534);
    const result = serve(configFor(dataDir));
    assert.equal(result.status, 1, result.output);
    assert.match(result.output, new RegExp(`dataDir ${dataDir} is owned by uid 65534, not by the relay's user \\(uid 0\\).*Fix: chown 0 ${dataDir}`));
  });

  test('a config path that is a named pipe is refused at once instead of blocking', () => {
    const fifo = join(tmp.path, 'relay.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const result = serve(fifo);
    assert.equal(result.status, 2, result.output);
    assert.match(result.output, /is not a regular file \(it is a named pipe\); give the path of a YAML or JSON file/);
    assert.ok(result.ms < 10_000, `answered in ${result.ms} ms`);
    const folder = serve(tmp.path);
    assert.match(folder.output, /is not a regular file \(it is a folder\)/);
  });

  test('LIFELINE_ADMIN_TOKEN: shorter than 32 characters or a placeholder is refused, saying how to generate one', () => {
    const dataDir = join(tmp.path, 'env-token');
    for (const [token, problem] of [
      ['0123456789abcdef', /is 16 characters long; it needs at least 32/],
      ['REPLACE-WITH-A-RANDOM-TOKEN-0123456789', /is a placeholder from an example/],
      ['a'.repeat(40), /repeats too few characters to be random/],
    ] as const) {
      const result = serve(configFor(dataDir), { LIFELINE_ADMIN_TOKEN: token });
      assert.equal(result.status, 1, result.output);
      assert.match(result.output, problem);
      assert.match(result.output, /generate one with: openssl rand -base64 32/);
    }
  });
});
