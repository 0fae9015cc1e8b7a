import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
