import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditEventInput } from './audit-log.js';
import { RefusalRecorder } from './refusal-recorder.js';

function recorder(perSource: number) {
  const written: AuditEventInput[] = [];
  let now = Date.parse('2026-12-01T00:00:00Z');
  const r = new RefusalRecorder({ perSourcePerWindow: perSource, write: (event) => void written.push(event), now: () => now });
  return { r, written, tick: (ms: number) => (now += ms) };
}

const denied = (path: string): AuditEventInput => ({ type: 'api', action: 'access.denied', path });

test('the same refusal again is counted, and written once with its count when the window closes', () => {
  const { r, written, tick } = recorder(60);
  assert.equal(r.record(denied('/db-1'), 'a', ['token:t', 'addr:1']), true);
  for (let i = 0; i < 1000; i++) {
    tick(1);
    assert.equal(r.record(denied('/db-1'), 'a', ['token:t', 'addr:1']), false);
  }
  assert.equal(written.length, 1, 'one line, not a thousand');
  r.flush();
  assert.equal(written.length, 2);
  assert.deepEqual(written[1], { ...denied('/db-1'), repeated: 1000, since: '2026-12-01T00:00:00.000Z', until: '2026-12-01T00:00:01.000Z' });
  // A new window writes the first one again.
  assert.equal(r.record(denied('/db-1'), 'a', ['token:t', 'addr:1']), true);
});

test('a source that keeps finding new refusals is capped per window, the rest summed in audit.suppressed', () => {
  const { r, written } = recorder(5);
  for (let i = 0; i < 50; i++) r.record(denied(`/vm-${i}`), `k${i}`, ['token:t', 'addr:1']);
  assert.equal(written.length, 5);
  // Another source is not held back by the first one.
  assert.equal(r.record(denied('/x'), 'other', ['token:u', 'addr:2']), true);
  r.flush();
  assert.deepEqual(
    written.filter((event) => event.type === 'audit.suppressed').map((event) => [event.source, event.count]),
    [['token:t', 45]],
  );
});

test('many sources together are capped at ten times the per-source limit', () => {
  const { r, written } = recorder(2);
  for (let i = 0; i < 500; i++) r.record(denied(`/vm-${i}`), `k${i}`, [`addr:${i}`]);
  assert.equal(written.length, 20);
  r.flush();
  const suppressed = written.filter((event) => event.type === 'audit.suppressed');
  assert.deepEqual(suppressed.map((event) => [event.source, event.count]), [['*', 480]]);
});

test('a write that throws is not counted as written; the caller hears of it', () => {
  let fail = true;
  const written: AuditEventInput[] = [];
  const r = new RefusalRecorder({ perSourcePerWindow: 5, write: (event) => { if (fail) throw new Error('EROFS'); written.push(event); } });
  assert.throws(() => r.record(denied('/a'), 'a', ['addr:1']), /EROFS/);
  fail = false;
  assert.equal(r.record(denied('/a'), 'a', ['addr:1']), true, 'the next one is written, not taken for a repeat');
  r.close();
});
