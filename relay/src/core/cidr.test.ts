import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrContains, nextFreeAddress, parseCidr, sourceAllowed } from './cidr.js';

test('parses CIDR blocks and bare addresses, normalizing the network', () => {
  assert.deepEqual(parseCidr('127.0.0.9/8'), { text: '127.0.0.0/8', network: 0x7f000000, prefix: 8 });
  assert.equal(parseCidr('10.1.2.3')?.text, '10.1.2.3/32');
  assert.equal(parseCidr('0.0.0.0/0')?.prefix, 0);
  for (const bad of ['127.0.0.0/33', '256.0.0.0/8', 'fe80::/64', '10.0.0/8', '']) assert.equal(parseCidr(bad), undefined, bad);
});

test('matches IPv4 and IPv4-mapped IPv6 peers; an empty allow list admits all', () => {
  const block = parseCidr('127.0.0.8/29')!;
  assert.equal(cidrContains(block, '127.0.0.15'), true);
  assert.equal(cidrContains(block, '::ffff:127.0.0.9'), true);
  assert.equal(cidrContains(block, '127.0.0.16'), false);
  assert.equal(cidrContains(parseCidr('0.0.0.0/0')!, '8.8.8.8'), true);
  assert.equal(sourceAllowed([], '1.2.3.4'), true);
  assert.equal(sourceAllowed([block], '1.2.3.4'), false);
});

test('allocates the next free host address of the pool', () => {
  const pool = [parseCidr('127.0.0.0/30')!, parseCidr('127.0.1.0/31')!];
  assert.equal(nextFreeAddress(pool, new Set()), '127.0.0.1');
  assert.equal(nextFreeAddress(pool, new Set(['127.0.0.1'])), '127.0.0.2');
  assert.equal(nextFreeAddress(pool, new Set(['127.0.0.1', '127.0.0.2'])), '127.0.1.0');
  assert.equal(nextFreeAddress(pool, new Set(['127.0.0.1', '127.0.0.2', '127.0.1.0', '127.0.1.1'])), undefined);
});
