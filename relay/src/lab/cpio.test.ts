import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCpio } from './cpio.js';

test('writes newc headers, 4-byte alignment, device numbers and the trailer', () => {
  const archive = buildCpio([
    { kind: 'dir', path: 'dev' },
    { kind: 'char', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
    { kind: 'symlink', path: 'sh', target: 'busybox' },
  ]);
  assert.equal(archive.length % 4, 0);
  const text = archive.toString('latin1');
  assert.equal(text.slice(0, 6), '070701');
  const header = (name: string): string => {
    const at = text.indexOf(`${name}\0`);
    return text.slice(at - 110, at);
  };
  const field = (h: string, index: number): number => parseInt(h.slice(6 + index * 8, 14 + index * 8), 16);
  const consoleHeader = header('dev/console');
  assert.equal(field(consoleHeader, 1), 0o020600);
  assert.equal(field(consoleHeader, 9), 5);
  assert.equal(field(consoleHeader, 10), 1);
  assert.equal(field(header('init'), 6), 10);
  assert.equal(field(header('sh'), 1) & 0o170000, 0o120000);
  assert.ok(text.includes('TRAILER!!!\0'));
});
