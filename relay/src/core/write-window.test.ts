import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WriteWindow } from './write-window.js';

test('says stop past the high-water mark and drains at half of it', async () => {
  const callbacks: Array<() => void> = [];
  const window = new WriteWindow(100, (_chunk, done) => callbacks.push(done));
  assert.equal(window.write(Buffer.alloc(40)), true);
  assert.equal(window.write(Buffer.alloc(40)), true);
  assert.equal(window.write(Buffer.alloc(40)), false);
  let drained = 0;
  window.onceDrain(() => drained++);
  callbacks.shift()!(); // 80 pending
  assert.equal(drained, 0);
  callbacks.shift()!(); // 40 pending: at most half
  assert.equal(drained, 1);
  callbacks.shift()!();
  assert.equal(drained, 1, 'a drain listener runs once');
  assert.equal(window.pending, 0);
});

test('per-chunk written callbacks run as their chunk completes; a drain asked for when already drained runs soon', async () => {
  const callbacks: Array<() => void> = [];
  const window = new WriteWindow(10, (_chunk, done) => callbacks.push(done));
  const written: number[] = [];
  window.write(Buffer.alloc(3), () => written.push(1));
  window.write(Buffer.alloc(3), () => written.push(2));
  callbacks[1]!();
  callbacks[0]!();
  assert.deepEqual(written, [2, 1]);
  let drained = false;
  window.onceDrain(() => (drained = true));
  await Promise.resolve();
  assert.equal(drained, true);
});
