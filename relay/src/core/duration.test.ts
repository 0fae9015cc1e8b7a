import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from './backoff.js';
import { describeDuration, parseDuration } from './duration.js';

test('durations with units and compounds', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('30d'), 2_592_000_000);
  for (const bad of ['', '10', 'h', '5 minutes', '-1h', '0s']) assert.equal(parseDuration(bad), undefined, bad);
});

test('backoff doubles up to its cap', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 50].map((n) => backoffDelay(n)), [100, 200, 400, 800, 1600, 2000, 2000]);
});

test('durations are said the way a person reads them', () => {
  assert.equal(describeDuration(60_000), '60 seconds');
  assert.equal(describeDuration(1000), '1 second');
  assert.equal(describeDuration(90_000), '90 seconds');
  assert.equal(describeDuration(120_000), '2 minutes');
  assert.equal(describeDuration(3_600_000), '1 hour');
  assert.equal(describeDuration(300), '1 second');
});
