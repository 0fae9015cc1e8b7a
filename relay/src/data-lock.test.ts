import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { lockDataDir } from './data-lock.js';

test('one relay per data folder: a live holder is refused, a dead or foreign pid is taken over, release removes the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-lock-'));
  const file = join(dir, 'relay.pid');
  try {
    const release = lockDataDir(dir);
    assert.equal(readFileSync(file, 'utf8').trim(), String(process.pid));
    assert.throws(() => lockDataDir(dir), /another relay in this process is running on the data folder/);
    release();
    assert.throws(() => readFileSync(file));

    // A live process that is not a relay (a pid reused after a reboot): taken over.
    const sleeper = spawn('sleep', ['30']);
    try {
      writeFileSync(file, `${sleeper.pid}\n`);
      lockDataDir(dir)();
      // A live relay: refused (its command line names lifeline).
      const relayLike = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'lifeline-relay']);
      try {
        await new Promise((resolve) => setTimeout(resolve, 100));
        writeFileSync(file, `${relayLike.pid}\n`);
        assert.throws(() => lockDataDir(dir), new RegExp(`another relay \\(pid ${relayLike.pid}\\)`));
      } finally {
        relayLike.kill('SIGKILL');
      }
    } finally {
      sleeper.kill('SIGKILL');
    }
    // A pid that is gone: taken over.
    writeFileSync(file, '999999999\n');
    lockDataDir(dir)();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
