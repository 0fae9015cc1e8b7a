import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes a hash-chained audit trail into a relay's data folder as the relay would have kept it:
 * `files - 1` rotated files and the live `audit.jsonl`, each about `fileBytes`, of API refusals
 * for web-1 (a day old). Returns the number of events.
 */
export function writeAuditTrail(dataDir: string, files: number, fileBytes: number): number {
  let seq = 0;
  let prev = '0'.repeat(64);
  const pad = 'x'.repeat(200);
  for (let file = 0; file < files; file++) {
    const lines: string[] = [];
    let bytes = 0;
    while (bytes < fileBytes) {
      seq++;
      const body = JSON.stringify({ seq, time: new Date(Date.now() - 86_400_000 + seq).toISOString(), prev, type: 'api', action: 'console.get', actor: { tokenName: 'web' }, virtualMachine: 'web-1', result: { status: 403 }, note: pad });
      const hash = createHash('sha256').update(body).digest('hex');
      const line = `${body.slice(0, -1)},"hash":"${hash}"}\n`;
      lines.push(line);
      bytes += line.length;
      prev = hash;
    }
    const name = file === files - 1 ? 'audit.jsonl' : `audit-${String(seq).padStart(12, '0')}.jsonl`;
    writeFileSync(join(dataDir, name), lines.join(''), { mode: 0o600 });
  }
  return seq;
}
