import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeFileDurable } from './durable-file.js';

test('a durable write leaves the whole file with its mode and no temporary file; exclusive refuses an existing one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'durable-'));
  try {
    const file = join(dir, 'key');
    writeFileDurable(file, 'secret\n', 0o600, { exclusive: true });
    assert.equal(readFileSync(file, 'utf8'), 'secret\n');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.throws(() => writeFileDurable(file, 'other', 0o600, { exclusive: true }), (error: NodeJS.ErrnoException) => error.code === 'EEXIST');
    assert.equal(readFileSync(file, 'utf8'), 'secret\n', 'the existing file is untouched');
    writeFileSync(join(dir, 'cert'), 'old');
    writeFileDurable(join(dir, 'cert'), Buffer.from('new'), 0o644);
    assert.equal(readFileSync(join(dir, 'cert'), 'utf8'), 'new');
    assert.deepEqual(readdirSync(dir).sort(), ['cert', 'key'], 'no temporary file is left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a symlink planted under the temporary name is not followed: the file it points to is untouched', () => {
  const dir = mkdtempSync(join(tmpdir(), 'durable-'));
  try {
    const elsewhere = join(dir, 'attacker-readable');
    writeFileSync(elsewhere, 'nothing yet');
    symlinkSync(elsewhere, join(dir, `.admin.token.${process.pid}.tmp`));
    writeFileDurable(join(dir, 'admin.token'), 'llt_secret\n', 0o600, { exclusive: true });
    assert.equal(readFileSync(elsewhere, 'utf8'), 'nothing yet', 'the secret did not go through the link');
    assert.equal(readFileSync(join(dir, 'admin.token'), 'utf8'), 'llt_secret\n');
    assert.equal(lstatSync(join(dir, 'admin.token')).isSymbolicLink(), false);
    assert.deepEqual(readdirSync(dir).sort(), ['admin.token', 'attacker-readable']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
