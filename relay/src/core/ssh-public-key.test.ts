import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import { parseSshPublicKey } from './ssh-public-key.js';

function rsaKey(bits: number): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const jwk = publicKey.export({ format: 'jwk' });
  const mpint = (b64: string): Buffer => {
    const raw = Buffer.from(b64, 'base64url');
    return raw[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), raw]) : raw;
  };
  const field = (buf: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, 0].map((_, i) => (buf.length >>> (24 - 8 * i)) & 0xff)), buf]);
  const blob = Buffer.concat([field(Buffer.from('ssh-rsa')), field(mpint(jwk.e!)), field(mpint(jwk.n!))]);
  return `ssh-rsa ${blob.toString('base64')} rsa@test`;
}

test('accepts ed25519 and ecdsa keys and computes the OpenSSH fingerprint', () => {
  const ed = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'me@host' });
  const parsed = parseSshPublicKey(ed.public);
  assert.ok(parsed.ok);
  assert.equal(parsed.key.type, 'ssh-ed25519');
  assert.equal(parsed.key.comment, 'me@host');
  assert.match(parsed.key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  for (const bits of [256, 384, 521] as const) {
    const ec = ssh2.utils.generateKeyPairSync('ecdsa', { bits });
    const result = parseSshPublicKey(ec.public);
    assert.ok(result.ok, `ecdsa ${bits}`);
    assert.equal(result.key.bits, bits);
  }
});

test('accepts RSA from 2048 bits and refuses shorter RSA keys by name', () => {
  const strong = parseSshPublicKey(rsaKey(2048));
  assert.ok(strong.ok);
  assert.equal(strong.key.bits, 2048);
  const weak = parseSshPublicKey(rsaKey(1024));
  assert.equal(weak.ok, false);
  assert.match(!weak.ok ? weak.message : '', /at least 2048 bits; this one has 1024/);
});

test('refuses garbage, mismatched types, truncated and multi-line input', () => {
  const ed = ssh2.utils.generateKeyPairSync('ed25519').public;
  const [, body] = ed.split(' ');
  for (const input of ['', 'hello', 'ssh-dss AAAAB3NzaC1kc3MAAACBAP', `ssh-rsa ${body}`, `ssh-ed25519 ${body!.slice(0, 40)}`, `ssh-ed25519 ${body}!!`, `${ed}\n${ed}`, `ssh-ed25519 ${Buffer.concat([Buffer.from(body!, 'base64'), Buffer.from([1])]).toString('base64')}`]) {
    assert.equal(parseSshPublicKey(input).ok, false, JSON.stringify(input));
  }
});

test('the canonical form drops the comment and keeps type and body', () => {
  const ed = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'a b c' }).public;
  const parsed = parseSshPublicKey(`  ${ed}  `);
  assert.ok(parsed.ok);
  assert.equal(parsed.key.canonical, ed.split(' ').slice(0, 2).join(' '));
  assert.equal(parsed.key.comment, 'a b c');
});
