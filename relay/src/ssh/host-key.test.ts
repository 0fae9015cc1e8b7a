import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateEd25519, loadOrCreateHostKey } from './host-key.js';

test('the host key is created once in the data folder and read back the same', () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-hostkey-'));
  try {
    const first = loadOrCreateHostKey(dir);
    assert.deepEqual(readdirSync(dir).sort(), ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']);
    assert.equal(loadOrCreateHostKey(dir).fingerprint, first.fingerprint);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('LIFELINE_SSH_HOST_KEY: the given key is used and nothing is written; a public key is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-hostkey-'));
  try {
    // Not ssh2's generator directly: about one key in 250 comes out unreadable (see generateEd25519).
    const pair = generateEd25519();
    const key = loadOrCreateHostKey(dir, pair.private);
    assert.equal(key.privateKey, pair.private);
    assert.equal(loadOrCreateHostKey(dir, pair.private).fingerprint, key.fingerprint);
    assert.deepEqual(readdirSync(dir), [], 'nothing on disk');
    assert.throws(() => loadOrCreateHostKey(dir, pair.public), /LIFELINE_SSH_HOST_KEY is a public key/);
    assert.throws(() => loadOrCreateHostKey(dir, 'not a key'), /cannot read the SSH host key LIFELINE_SSH_HOST_KEY/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
