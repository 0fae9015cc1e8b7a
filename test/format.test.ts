import assert from 'node:assert/strict';
import { test } from 'node:test';
import { elapsed, timeLeft } from '../renderer/src/format.js';

test('time left on a console reads the way a person says it', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');
  const at = (ms: number): string => new Date(now + ms).toISOString();
  assert.equal(timeLeft(undefined, now), '');
  assert.equal(timeLeft(at(-1), now), 'expired');
  assert.equal(timeLeft(at(0), now), 'expired');
  assert.equal(timeLeft(at(45_000), now), '45 s');
  assert.equal(timeLeft(at(12 * 60_000 + 5000), now), '12 min');
  assert.equal(timeLeft(at(119 * 60_000), now), '1 h 59 min');
  assert.equal(timeLeft(at(24 * 3_600_000 - 60_000), now), '23 h 59 min');
  assert.equal(timeLeft(at(30 * 86_400_000), now), '30 d 0 h');
  assert.equal(timeLeft('not a date', now), 'expired');
});

test('session durations are mm:ss, then h:mm:ss', () => {
  assert.equal(elapsed(0), '00:00');
  assert.equal(elapsed(4 * 60_000 + 7000), '04:07');
  assert.equal(elapsed(3_723_000), '1:02:03');
  assert.equal(elapsed(-5), '00:00');
});
