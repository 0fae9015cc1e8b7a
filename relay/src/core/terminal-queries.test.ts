import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { lastLines, withoutTerminalQueries } from './terminal-queries.js';

const strip = (text: string): string => withoutTerminalQueries(Buffer.from(text, 'latin1')).toString('latin1');

test('removes the cursor-position query BusyBox sends after its prompt, and keeps the prompt', () => {
  assert.equal(strip('~ # \x1b[6n'), '~ # ');
  assert.equal(strip('login: \x1b[6nroot\r\n~ # \x1b[6n\x1b[?6n'), 'login: root\r\n~ # ');
});

test('removes every kind of request a terminal answers', () => {
  const queries = [
    '\x1b[5n', '\x1b[?15n', '\x1b[c', '\x1b[0c', '\x1b[>c', '\x1b[>0c', '\x1b[=c', '\x1b[x', '\x1b[1x', '\x1b[?25$p', '\x1b[4$p',
    '\x1b[>q', '\x1b[>0q', '\x1b[14t', '\x1b[18t', '\x1b[21t', '\x1b[?u', '\x1b[?4m', '\x1b[1$w', '\x1b[1$u', '\x1b[1;1;1;1;1;1*y', '\x1b[?1;1S',
    '\x1b]10;?\x07', '\x1b]11;?\x1b\\', '\x1b]4;1;?\x07', '\x1b]52;c;?\x07', '\x1bP$qm\x1b\\', '\x1bP+q544e\x1b\\', '\x1bZ', '\x05',
  ];
  for (const query of queries) assert.equal(strip(`a${query}b`), 'ab', JSON.stringify(query));
});

test('keeps everything that only draws: colours, cursor moves, titles, modes, window moves', () => {
  const kept = ['\x1b[1;31m', '\x1b[0m', '\x1b[2J', '\x1b[H', '\x1b[10;20H', '\x1b[?25l', '\x1b[?1049h', '\x1b[8;24;80t', '\x1b[22t', '\x1b]0;title?\x07', '\x1b]2;?\x07', '\x1b]8;;http://x\x1b\\', '\x1b(B', '\x1b7', '\x1b[>4;1m', '\x1b[>1n', '\x1bPqpixels\x1b\\'];
  for (const sequence of kept) assert.equal(strip(`a${sequence}b`), `a${sequence}b`, JSON.stringify(sequence));
});

test('an unfinished sequence at the end is kept for the live output to finish', () => {
  assert.equal(strip('prompt \x1b[6'), 'prompt \x1b[6');
  assert.equal(strip('prompt \x1b'), 'prompt \x1b');
  assert.equal(strip('x\x1b]11;?'), 'x\x1b]11;?');
});

test('a query right after a doubled or cancelled escape is still found', () => {
  assert.equal(strip('\x1b\x1b[6nZ'), 'Z');
  assert.equal(strip('\x1b]0;title\x1b[6n'), '\x1b]0;title');
});

test('output without queries comes back as the same buffer', () => {
  const data = Buffer.from('plain \x1b[1mbold\x1b[0m\r\n');
  assert.equal(withoutTerminalQueries(data), data);
});

test('a control inside a query is still run; a query cut by ESC cannot join with what follows', () => {
  assert.equal(strip('a\x1b[6\rnb'), 'a\rb');
  assert.equal(strip('\x1b[6\x1b[6nn'), 'n');
  assert.equal(strip('\x1b[6\x18n'), '\x1b[6\x18n');
});

test('never adds bytes, and what it leaves holds nothing more to remove (no query is made by joining pieces)', () => {
  const pieces = fc.constantFrom('a', '\r', '\n', '\x1b', '[', '6', 'n', ';', '?', ']', '\x07', '\\', 'P', '$', 'q', 'c', '>', '\x05', '\x18', '\x1b[6n', '\x1b[0m', '11', 'Z');
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 60 }), (parts) => {
      const input = parts.join('');
      const output = strip(input);
      assert.ok(output.length <= input.length);
      assert.equal(strip(output), output, JSON.stringify(input));
    }),
    { numRuns: Number(process.env.FC_RUNS ?? 5000) },
  );
});

describe('lastLines: --replay N', () => {
  const text = (data: Buffer): string => data.toString('latin1');
  test('keeps the last N lines, the line being written counting as one', () => {
    const replay = Buffer.from('boot\r\nlogin ok\r\nlab-1:/# ');
    assert.equal(text(lastLines(replay, 1)), 'lab-1:/# ');
    assert.equal(text(lastLines(replay, 2)), 'login ok\r\nlab-1:/# ');
    assert.equal(text(lastLines(replay, 9)), text(replay));
    assert.equal(lastLines(replay, 0).length, 0);
    assert.equal(lastLines(replay, undefined), replay);
  });

  test('a trailing newline closes the last line instead of opening an empty one', () => {
    assert.equal(text(lastLines(Buffer.from('a\nb\nc\n'), 2)), 'b\nc\n');
    assert.equal(text(lastLines(Buffer.from('\n'), 1)), '\n');
  });
});
