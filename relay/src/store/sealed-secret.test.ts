import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seal, unseal } from './sealed-secret.js';

const SECRET = 'a-fleet-secret-of-at-least-32-characters';

test('sealed text opens with its secret only; a changed byte or another secret gives nothing', () => {
  const sealed = seal('-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n', SECRET);
  assert.match(sealed, /^sealed-v1:/);
  assert.doesNotMatch(sealed, /PRIVATE/);
  assert.equal(unseal(sealed, SECRET), '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n');
  assert.notEqual(seal('same', SECRET), seal('same', SECRET), 'a fresh salt and IV each time');
  assert.equal(unseal(sealed, `${SECRET}x`), undefined);
  const parts = sealed.split(':');
  const body = Buffer.from(parts[4]!, 'base64');
  body[0]! ^= 1;
  assert.equal(unseal([...parts.slice(0, 4), body.toString('base64')].join(':'), SECRET), undefined);
  assert.equal(unseal('plain text', SECRET), undefined);
});
