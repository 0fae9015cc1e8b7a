import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from './buffer-pool.js';

test('buffers come back for reuse, up to the idle limit', () => {
  const pool = new BufferPool(16, 2);
  const a = pool.take();
  const b = pool.take();
  const c = pool.take();
  assert.equal(a.length, 16);
  assert.notEqual(a, b);
  pool.give(a);
  pool.give(b);
  pool.give(c); // over the limit: left to the collector
  assert.equal(pool.idle, 2);
  const reused = [pool.take(), pool.take()];
  assert.ok(reused.includes(a) && reused.includes(b));
  assert.equal(pool.idle, 0);
});

test('a buffer given back twice is kept once, and foreign sizes are not kept', () => {
  const pool = new BufferPool(16, 4);
  const a = pool.take();
  pool.give(a);
  pool.give(a);
  pool.give(Buffer.alloc(8));
  assert.equal(pool.idle, 1);
  assert.equal(pool.take(), a);
  assert.notEqual(pool.take(), a);
});
