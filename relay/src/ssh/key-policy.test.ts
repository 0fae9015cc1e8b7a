import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { parseSshPublicKey } from './key-policy.js';

/** OpenSSH public key lines built from Node's own key generator (ssh2's drops leading zero bytes now and then). */
function field(buf: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(buf.length);
  return Buffer.concat([length, buf]);
}

function mpint(b64: string): Buffer {
  const raw = Buffer.from(b64, 'base64url');
  return raw[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), raw]) : raw;
}

function line(type: string, parts: Buffer[], comment = 'me@host'): string {
  return `${type} ${Buffer.concat([field(Buffer.from(type)), ...parts.map(field)]).toString('base64')} ${comment}`;
}

function rsaKey(bits: number): string {
  const jwk = generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'jwk' });
  return line('ssh-rsa', [mpint(jwk.e!), mpint(jwk.n!)]);
}

function ed25519Key(comment = 'me@host'): string {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  return line('ssh-ed25519', [Buffer.from(jwk.x!, 'base64url')], comment);
}

function ecdsaKey(bits: 256 | 384 | 521): string {
  const jwk = generateKeyPairSync('ec', { namedCurve: `P-${bits}` }).publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return line(`ecdsa-sha2-nistp${bits}`, [Buffer.from(`nistp${bits}`), point]);
}

test('accepts ed25519 and ecdsa keys and computes the OpenSSH fingerprint', () => {
  const parsed = parseSshPublicKey(ed25519Key());
  assert.ok(parsed.ok);
  assert.equal(parsed.key.type, 'ssh-ed25519');
  assert.equal(parsed.key.comment, 'me@host');
  assert.match(parsed.key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  for (const bits of [256, 384, 521] as const) {
    const result = parseSshPublicKey(ecdsaKey(bits));
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
  const ed = ed25519Key().split(' ').slice(0, 2).join(' ');
  const [, body] = ed.split(' ');
  for (const input of ['', 'hello', 'ssh-dss AAAAB3NzaC1kc3MAAACBAP', `ssh-rsa ${body}`, `ssh-ed25519 ${body!.slice(0, 40)}`, `ssh-ed25519 ${body}!!`, `${ed}\n${ed}`, `ssh-ed25519 ${Buffer.concat([Buffer.from(body!, 'base64'), Buffer.from([1])]).toString('base64')}`]) {
    assert.equal(parseSshPublicKey(input).ok, false, JSON.stringify(input));
  }
});

test('the canonical form drops the comment and keeps type and body', () => {
  const ed = ed25519Key('a b c');
  const parsed = parseSshPublicKey(`  ${ed}  `);
  assert.ok(parsed.ok);
  assert.equal(parsed.key.canonical, ed.split(' ').slice(0, 2).join(' '));
  assert.equal(parsed.key.comment, 'a b c');
});
