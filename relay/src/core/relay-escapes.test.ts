import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EscapeParser } from './relay-escapes.js';

const feed = (parser: EscapeParser, text: string): { input: string; commands: string[] } => {
  const { input, commands } = parser.feed(Buffer.from(text, 'latin1'));
  return { input: input.toString('latin1'), commands };
};

test('a ~ and a letter at the start of a line is a command; the session start counts as a line start', () => {
  const parser = new EscapeParser();
  assert.deepEqual(feed(parser, '~r'), { input: '', commands: ['request'] });
  assert.deepEqual(feed(parser, 'ls\r~w~?'), { input: 'ls\r', commands: ['who', 'help'] });
  assert.deepEqual(feed(parser, 'echo a\n~a'), { input: 'echo a\n', commands: ['approve'] });
});

test('a ~ elsewhere, ~ and another letter, and ~~ reach the VM as typed (~~ as one ~)', () => {
  const parser = new EscapeParser();
  assert.deepEqual(feed(parser, 'cd ~\r'), { input: 'cd ~\r', commands: [] });
  assert.deepEqual(feed(parser, '~/bin/x\r'), { input: '~/bin/x\r', commands: [] });
  assert.deepEqual(feed(parser, '~~r'), { input: '~r', commands: [] }, '~~ is a literal ~, and the r after it is not at a line start');
  assert.deepEqual(feed(parser, 'a~r'), { input: 'a~r', commands: [] });
});

test('a ~ at the end of one chunk waits for the next; input without ~ is passed through as the same buffer', () => {
  const parser = new EscapeParser();
  assert.deepEqual(feed(parser, 'x\r~'), { input: 'x\r', commands: [] });
  assert.deepEqual(feed(parser, 'd'), { input: '', commands: ['deny'] });
  assert.deepEqual(feed(parser, '~'), { input: '', commands: [] });
  assert.deepEqual(feed(parser, 'q'), { input: '~q', commands: [] });
  const plain = Buffer.from('plain text\r');
  assert.equal(parser.feed(plain).input, plain);
});
