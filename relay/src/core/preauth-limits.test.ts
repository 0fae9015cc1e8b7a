import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailureBackoff, parseMaxStartups, StartupLimiter } from './preauth-limits.js';

test('MaxStartups parses as OpenSSH writes it', () => {
  assert.deepEqual(parseMaxStartups('10:30:100'), { start: 10, rate: 30, full: 100 });
  assert.deepEqual(parseMaxStartups('20'), { start: 20, rate: 100, full: 20 });
  for (const bad of ['', '0', '10:30', '10:101:100', '100:30:10', 'x', '-1:2:3']) assert.equal(parseMaxStartups(bad), undefined, bad);
});

test('below start every connection is admitted; from start, random early drop rises linearly to all at full', () => {
  let dice = 0;
  const limiter = new StartupLimiter({ start: 2, rate: 30, full: 6 }, 100, () => dice);
  const slots = [limiter.admit('a'), limiter.admit('b')];
  assert.ok(slots.every((s) => s.ok));
  // At 2 pending: 30% chance. Dice 0.29 drops, 0.31 passes.
  dice = 0.29;
  assert.deepEqual(limiter.admit('c'), { ok: false, reason: 'random-early-drop' });
  dice = 0.31;
  assert.equal(limiter.admit('c').ok, true);
  // At 3 pending: 30 + 70 * 1/4 = 47.5%.
  dice = 0.47;
  assert.equal(limiter.admit('d').ok, false);
  dice = 0.48;
  assert.equal(limiter.admit('d').ok, true);
  dice = 0.99;
  assert.equal(limiter.admit('e').ok, true);
  assert.equal(limiter.admit('f').ok, true);
  assert.equal(limiter.pending, 6);
  assert.deepEqual(limiter.admit('g'), { ok: false, reason: 'full' });
});

test('one address gets at most perSource slots; released slots free both counts, once', () => {
  const limiter = new StartupLimiter({ start: 100, rate: 30, full: 200 }, 2, () => 0.99);
  const first = limiter.admit('10.0.0.1');
  const second = limiter.admit('10.0.0.1');
  assert.deepEqual(limiter.admit('10.0.0.1'), { ok: false, reason: 'per-source' });
  assert.equal(limiter.admit('10.0.0.2').ok, true, 'another address is not affected');
  if (!first.ok || !second.ok) throw new Error('admitted');
  first.slot.release();
  first.slot.release();
  assert.equal(limiter.pending, 2);
  assert.equal(limiter.admit('10.0.0.1').ok, true);
});

test('repeated failures from one address wait longer and longer; only a quiet spell starts over', () => {
  let now = 0;
  const backoff = new FailureBackoff({ free: 3, maxDelayMs: 2000, forgetAfterMs: 60_000 }, () => now);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map(() => backoff.fail('a')), [0, 0, 0, 250, 500, 1000, 2000, 2000]);
  assert.equal(backoff.fail('b'), 0, 'per address');
  assert.equal(backoff.fail('a'), 2000, 'still slowed: nothing but time forgets');
  for (let i = 0; i < 5; i++) backoff.fail('c');
  now += 60_000;
  assert.equal(backoff.fail('c'), 0, 'forgotten after a quiet minute');
});
