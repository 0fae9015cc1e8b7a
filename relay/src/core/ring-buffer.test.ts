import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteRing } from './ring-buffer.js';

test('keeps the most recent bytes across chunk boundaries', () => {
  const ring = new ByteRing(8);
  ring.push(Buffer.from('abc'));
  ring.push(Buffer.from('defgh'));
  assert.equal(ring.snapshot().toString(), 'abcdefgh');
  ring.push(Buffer.from('ij'));
  assert.equal(ring.snapshot().toString(), 'cdefghij');
  ring.push(Buffer.from('0123456789'));
  assert.equal(ring.snapshot().toString(), '23456789');
  assert.equal(ring.length, 8);
});

test('many one-byte chunks stay correct and bounded', () => {
  const ring = new ByteRing(1000);
  let expected = '';
  for (let i = 0; i < 5000; i++) {
    const ch = String.fromCharCode(97 + (i % 26));
    ring.push(Buffer.from(ch));
    expected += ch;
  }
  assert.equal(ring.snapshot().toString(), expected.slice(-1000));
});

test('a chunk is copied, so later changes to the caller buffer do not leak in', () => {
  const ring = new ByteRing(16);
  const chunk = Buffer.from('stable');
  ring.push(chunk);
  chunk.fill(0x78);
  assert.equal(ring.snapshot().toString(), 'stable');
  assert.equal(new ByteRing(0).length, 0);
});

test('random chunk sizes, including wrap-around and chunks larger than the ring, match a reference', () => {
  let seed = 7;
  const random = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  for (const capacity of [1, 7, 64, 1000]) {
    const ring = new ByteRing(capacity);
    let expected = Buffer.alloc(0);
    for (let i = 0; i < 400; i++) {
      const chunk = Buffer.from(Array.from({ length: random(capacity * 2 + 2) }, () => random(256)));
      ring.push(chunk);
      expected = Buffer.concat([expected, chunk]).subarray(-capacity);
      assert.deepEqual(ring.snapshot(), expected, `capacity ${capacity}, step ${i}`);
      assert.equal(ring.length, expected.length);
    }
  }
});

test('a snapshot is a copy: later pushes do not change it', () => {
  const ring = new ByteRing(4);
  ring.push(Buffer.from('abcd'));
  const before = ring.snapshot();
  ring.push(Buffer.from('xy'));
  assert.equal(before.toString(), 'abcd');
  assert.equal(ring.snapshot().toString(), 'cdxy');
  assert.equal(new ByteRing(4).snapshot().length, 0);
});

test('clear forgets everything kept; pushes after it start afresh', () => {
  const ring = new ByteRing(8);
  ring.push(Buffer.from('secret-output'));
  ring.clear();
  assert.equal(ring.length, 0);
  assert.deepEqual(ring.snapshot(), Buffer.alloc(0));
  ring.push(Buffer.from('new'));
  assert.equal(ring.snapshot().toString(), 'new');
});
