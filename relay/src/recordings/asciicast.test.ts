import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AsciicastEncoder } from './asciicast.js';

const parse = (line: string): [number, string, string] => JSON.parse(line) as [number, string, string];

test('a UTF-8 character split across reads is written whole; invalid bytes become U+FFFD; times never go back', () => {
  const encoder = new AsciicastEncoder(1000);
  assert.equal(encoder.out(1100, Buffer.from([0x63, 0x61, 0x66, 0xc3])), `${JSON.stringify([0.1, 'o', 'caf'])}\n`);
  assert.deepEqual(parse(encoder.out(1200, Buffer.from([0xa9, 0x0a]))), [0.2, 'o', 'é\n']);
  assert.deepEqual(parse(encoder.out(1300, Buffer.from([0xff, 0xfe, 0x0a]))), [0.3, 'o', '\ufffd\ufffd\n']);
  assert.deepEqual(parse(encoder.marker(1250, 'join')), [0.3, 'm', 'join'], 'a clock that stepped back does not make time run backwards');
  assert.deepEqual(parse(encoder.resize(1400.0004, 120, 40)), [0.4, 'r', '120x40']);
  assert.equal(encoder.out(1500, Buffer.from([0xe2, 0x82])), '');
  assert.deepEqual(parse(encoder.end(1600)), [0.6, 'o', '\ufffd'], 'a character cut off at the end is replaced, not lost');
  assert.deepEqual(JSON.parse(AsciicastEncoder.header({ width: 80, height: 24, timestamp: 1, title: 't' })), { version: 2, width: 80, height: 24, timestamp: 1, title: 't' });
});
