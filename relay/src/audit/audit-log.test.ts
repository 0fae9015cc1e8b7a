import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { auditFiles } from './audit-format.js';
import { AuditLog } from './audit-log.js';
import { verifyAuditTrail } from './audit-verify.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'll-audit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const options = { maxFileBytes: 1024 * 1024, keepFiles: 3 };

test('events chain across reopening; verify names a changed, a removed and a reordered line', () => {
  let log = new AuditLog(dir, options);
  for (let i = 0; i < 5; i++) log.append({ type: 'test', n: i });
  log.close();
  log = new AuditLog(dir, options);
  assert.equal(log.append({ type: 'test', n: 5 }).seq, 6, 'the sequence goes on after reopening');
  log.close();
  const ok = verifyAuditTrail(dir);
  assert.deepEqual(ok.ok && { events: ok.events, lastSeq: ok.lastSeq, anchored: ok.anchored }, { events: 6, lastSeq: 6, anchored: true });

  const path = join(dir, 'audit.jsonl');
  const lines = readFileSync(path, 'utf8').split('\n');
  const write = (next: string[]) => writeFileSync(path, next.join('\n'));
  write(lines.map((line, i) => (i === 2 ? line.replace('"n":2', '"n":9') : line)));
  assert.deepEqual(pick(verifyAuditTrail(dir)), { line: 3, problem: 'its hash does not match its content: the line was changed' });
  write(lines.filter((_, i) => i !== 2));
  assert.match(pick(verifyAuditTrail(dir)).problem, /^its "prev" does not match the hash of event 2/);
  assert.equal(pick(verifyAuditTrail(dir)).line, 3);
  write([lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)]);
  assert.equal(pick(verifyAuditTrail(dir)).line, 2);
  write(['{"seq":1,"oops":true}', ...lines.slice(1)]);
  assert.match(pick(verifyAuditTrail(dir)).problem, /not a trail line/);
});

function pick(result: ReturnType<typeof verifyAuditTrail>): { line: number; problem: string } {
  assert.equal(result.ok, false, 'verification should fail');
  return result.ok ? { line: 0, problem: '' } : { line: result.line, problem: result.problem };
}

test('a torn last line (a crash mid-write) is cut at open, and the chain goes on from the line before', () => {
  const log = new AuditLog(dir, options);
  log.append({ type: 'test', n: 1 });
  log.close();
  appendFileSync(join(dir, 'audit.jsonl'), '{"seq":2,"time":"2026-');
  const reopened = new AuditLog(dir, options);
  assert.ok(reopened.recoveredBytes > 0);
  assert.equal(reopened.append({ type: 'test', n: 2 }).seq, 2);
  reopened.close();
  assert.equal(verifyAuditTrail(dir).ok, true);
});

test('rotation past maxFileBytes keeps the chain across files and only keepFiles rotated files', async () => {
  const log = new AuditLog(dir, { maxFileBytes: 600, keepFiles: 2 });
  for (let i = 0; i < 40; i++) log.append({ type: 'test', padding: 'x'.repeat(100), n: i });
  log.close();
  const files = readdirSync(dir).sort();
  assert.equal(files.filter((name) => /^audit-\d{12}\.jsonl$/.test(name)).length, 2);
  const result = verifyAuditTrail(dir);
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(result.ok && result.anchored, false, 'older files were pruned: the chain is anchored at the oldest kept');
  // Every pruned file left an audit.pruned event with its range; the last one ends right before the oldest kept event.
  assert.ok(result.ok && result.pruned && result.pruned.toSeq === result.firstSeq! - 1, JSON.stringify(result));
  assert.ok(result.ok && result.lastSeq! > 40, 'the audit.pruned events are in the chain too');
  const reader = new AuditLog(dir, { maxFileBytes: 600, keepFiles: 2 });
  const first = result.ok ? result.firstSeq! : 0;
  const { events, more } = await reader.read({ afterSeq: first, limit: 2 });
  assert.deepEqual(events.map((e) => e.seq), [first + 1, first + 2]);
  assert.equal(more, true);
  const tail = result.ok ? result.lastSeq! : 0;
  assert.deepEqual((await reader.read({ afterSeq: tail - 2, limit: 5 })).events.map((e) => e.seq), [tail - 1, tail]);
  reader.close();
});

test('pruning writes audit.pruned before the file goes, by count and by age; a metric-visible count', () => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const pruned: string[] = [];
  const log = new AuditLog(dir, { maxFileBytes: 600, keepFiles: 100, maxAgeMs: 86_400_000, now: () => now, onPrune: (range) => pruned.push(range.file) });
  for (let i = 0; i < 10; i++) log.append({ type: 'test', padding: 'x'.repeat(200), n: i });
  assert.equal(log.prunedFiles, 0, 'nothing is old yet');
  now += 2 * 86_400_000;
  log.prune();
  assert.ok(log.prunedFiles > 0 && pruned.length === log.prunedFiles);
  assert.ok(log.prunedEvents >= 8, `pruned ${log.prunedEvents} events`);
  log.close();
  const events = auditFiles(dir).flatMap((file) => readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line)));
  const records = events.filter((event) => event.type === 'audit.pruned');
  assert.deepEqual(records.map((event) => event.file), pruned);
  assert.ok(records.every((event) => event.reason === 'maxAge' && event.toSeq >= event.fromSeq && /^[0-9a-f]{64}$/.test(event.toHash)));
  assert.equal(verifyAuditTrail(dir).ok, true);
});

test('verify fails on a cut at the head, naming the missing events', () => {
  const log = new AuditLog(dir, options);
  for (let i = 0; i < 200; i++) log.append({ type: 'test', n: i });
  log.close();
  const path = join(dir, 'audit.jsonl');
  writeFileSync(path, readFileSync(path, 'utf8').split('\n').slice(150).join('\n'));
  const result = verifyAuditTrail(dir);
  assert.equal(result.ok, false);
  assert.match(result.ok ? '' : result.problem, /^events 1–150 are missing at the head: the oldest kept event is 151 and no audit\.pruned event accounts for the events before it/);
});

test('with the head the store recorded: a cut tail, an emptied or deleted trail, and a rewritten one fail', () => {
  const log = new AuditLog(dir, options);
  let head = { seq: 0, hash: '' };
  const recorded = new AuditLog(dir, { ...options, onAppend: (seq, hash) => void (head = { seq, hash }) });
  log.close();
  for (let i = 0; i < 20; i++) recorded.append({ type: 'test', n: i });
  recorded.close();
  assert.equal(verifyAuditTrail(dir, head).ok, true);
  const path = join(dir, 'audit.jsonl');
  const lines = readFileSync(path, 'utf8').split('\n');
  writeFileSync(path, `${lines.slice(0, 15).join('\n')}\n`);
  assert.match(pick(verifyAuditTrail(dir, head)).problem, /^events 16–20 are missing at the end: the trail stops at 15, but the relay's store recorded 20 as written/);
  writeFileSync(path, '');
  assert.match(pick(verifyAuditTrail(dir, head)).problem, /^the trail is empty or missing, but the relay's store recorded 20 events/);
  rmSync(path);
  assert.match(pick(verifyAuditTrail(dir, head)).problem, /empty or missing/);
  // A whole new chain of the same length is not the one that was written.
  const forged = new AuditLog(dir, options);
  for (let i = 0; i < 20; i++) forged.append({ type: 'test', n: -i });
  forged.close();
  assert.match(pick(verifyAuditTrail(dir, head)).problem, /^event 20 is not the one the relay's store recorded/);
});
