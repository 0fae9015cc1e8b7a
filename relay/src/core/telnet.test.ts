import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeIac, TelnetDecoder } from './telnet.js';

const bytes = (...values: Array<number | string>): Buffer => Buffer.concat(values.map((v) => (typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from([v]))));

test('QEMU\'s telnet greeting is stripped; data passes through unchanged (the same buffer when there is no 0xFF)', () => {
  const decoder = new TelnetDecoder();
  // IAC WILL ECHO, IAC WILL SGA, IAC DONT LINEMODE, then text.
  assert.deepEqual(decoder.decode(bytes(255, 251, 1, 255, 251, 3, 255, 254, 34, 'login: ')), bytes('login: '));
  const plain = bytes('no commands here\r\n');
  assert.equal(decoder.decode(plain), plain);
});

test('commands split across chunks, subnegotiation, two-byte commands and escaped 0xFF', () => {
  const decoder = new TelnetDecoder();
  const parts = [bytes('a', 255), bytes(251), bytes(1, 'b', 255, 250, 24, 1, 'xterm', 255), bytes(240, 'c', 255, 241, 'd', 255), bytes(255, 'e')];
  assert.deepEqual(Buffer.concat(parts.map((p) => decoder.decode(p))), bytes('abcd', 255, 'e'));
});

test('every split of a stream decodes the same', () => {
  const stream = bytes('x', 255, 251, 1, 'y', 255, 255, 'z', 255, 250, 31, 0, 80, 255, 240, 'w', 255, 244, 'v');
  const expected = bytes('xy', 255, 'zwv');
  for (let cut = 0; cut <= stream.length; cut++) {
    const decoder = new TelnetDecoder();
    assert.deepEqual(Buffer.concat([decoder.decode(stream.subarray(0, cut)), decoder.decode(stream.subarray(cut))]), expected, `cut at ${cut}`);
  }
});

test('input 0xFF is doubled; input without it is returned as is', () => {
  assert.deepEqual(escapeIac(bytes('a', 255, 'b', 255)), bytes('a', 255, 255, 'b', 255, 255));
  const plain = bytes('plain');
  assert.equal(escapeIac(plain), plain);
  assert.deepEqual(new TelnetDecoder().decode(escapeIac(bytes(1, 255, 2, 255, 255))), bytes(1, 255, 2, 255, 255));
});

test('qemu mode: the greeting is stripped, then every byte is data, 0xFF included, however the stream is split', () => {
  // QEMU's greeting (IAC WILL ECHO, WILL SGA, WILL BINARY, DO BINARY), then a guest's printf 'bad:\\377\\376:end'.
  const stream = bytes(255, 251, 1, 255, 251, 3, 255, 251, 0, 255, 253, 0, 'bad:', 255, 254, ':end', 255, 255, 'x');
  const expected = bytes('bad:', 255, 254, ':end', 255, 255, 'x');
  for (let cut = 0; cut <= stream.length; cut++) {
    const decoder = new TelnetDecoder('qemu');
    assert.deepEqual(Buffer.concat([decoder.decode(stream.subarray(0, cut)), decoder.decode(stream.subarray(cut))]), expected, `cut at ${cut}`);
  }
  const decoder = new TelnetDecoder('qemu');
  decoder.decode(bytes(255, 251, 1, 'a'));
  const later = bytes(255, 244, 'b');
  assert.equal(decoder.decode(later), later, 'after the first data byte a chunk passes as the same buffer');
});
