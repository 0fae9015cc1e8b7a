import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { AuditLog, verifyAuditTrail } from './audit-log.js';

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

test('rotation past maxFileBytes keeps the chain across files and only keepFiles rotated files', () => {
  const log = new AuditLog(dir, { maxFileBytes: 600, keepFiles: 2 });
  for (let i = 0; i < 40; i++) log.append({ type: 'test', padding: 'x'.repeat(100), n: i });
  log.close();
  const files = readdirSync(dir).sort();
  assert.equal(files.filter((name) => /^audit-\d{12}\.jsonl$/.test(name)).length, 2);
  const result = verifyAuditTrail(dir);
  assert.equal(result.ok, true);
  assert.equal(result.ok && result.anchored, false, 'older files were rotated away: the chain is anchored at the oldest kept');
  assert.equal(result.ok && result.lastSeq, 40);
  const reader = new AuditLog(dir, { maxFileBytes: 600, keepFiles: 2 });
  const first = result.ok ? result.firstSeq! : 0;
  const { events, more } = reader.read({ afterSeq: first, limit: 2 });
  assert.deepEqual(events.map((e) => e.seq), [first + 1, first + 2]);
  assert.equal(more, true);
  assert.deepEqual(reader.read({ afterSeq: 38, limit: 5 }).events.map((e) => e.seq), [39, 40]);
  reader.close();
});
