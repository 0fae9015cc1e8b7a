import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../config/parse-config.js';
import { createSelfSignedCertificate } from './self-signed.js';
import { loadTlsMaterial, tlsWanted } from './tls-material.js';

test('the self-signed certificate is X.509 v3, ECDSA P-256, for the names given, and OpenSSL agrees with Node', async () => {
  const made = await createSelfSignedCertificate('relay test', ['localhost', '127.0.0.1', '::1', '10.1.2.3', 'relay.example', 'fd00::2'], 30, new Date('2026-11-26T00:00:00Z'));
  const certificate = new X509Certificate(made.cert);
  assert.equal(certificate.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:10.1.2.3, DNS:relay.example, IP Address:FD00:0:0:0:0:0:0:2');
  assert.equal(certificate.checkHost('relay.example'), 'relay.example');
  assert.equal(certificate.checkIP('10.1.2.3'), '10.1.2.3');
  assert.equal(certificate.checkIP('10.1.2.4'), undefined);
  assert.equal(certificate.ca, false);
  assert.equal(certificate.validTo, 'Dec 26 00:00:00 2026 GMT');
  assert.ok(certificate.checkPrivateKey(createPrivateKey(made.key)));
  const dir = mkdtempSync(join(tmpdir(), 'll-cert-'));
  try {
    const path = join(dir, 'c.pem');
    execFileSync('bash', ['-c', `cat > ${path}`], { input: made.cert });
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-fingerprint', '-sha256', '-in', path], { encoding: 'utf8' });
    assert.match(text, /Version: 3/);
    assert.match(text, /ASN1 OID: prime256v1/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /Digital Signature/);
    assert.ok(text.includes(`Fingerprint=${certificate.fingerprint256}`));
    assert.match(execFileSync('openssl', ['verify', '-CAfile', path, path], { encoding: 'utf8' }), /OK/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an IPv4-mapped and a plain IPv6 address are written as OpenSSL reads them (the hand-written DER had ::ffff:10.0.0.1 as …ffff:0010)', async () => {
  const made = await createSelfSignedCertificate('v6', ['::ffff:10.0.0.1', 'fd00::10', '2001:db8::a:b'], 30);
  const dir = mkdtempSync(join(tmpdir(), 'll-cert-'));
  try {
    const path = join(dir, 'c.pem');
    writeFileSync(path, made.cert);
    const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', path], { encoding: 'utf8' });
    assert.match(text, /IP Address:0:0:0:0:0:FFFF:A00:1, IP Address:FD00:0:0:0:0:0:0:10, IP Address:2001:DB8:0:0:0:0:A:B/);
    // OpenSSL's own host check, as a TLS client makes it: the mapped address matches, its misencoding does not.
    assert.match(execFileSync('openssl', ['x509', '-noout', '-checkip', '::ffff:10.0.0.1', '-in', path], { encoding: 'utf8' }), /does match certificate/);
    assert.match(execFileSync('openssl', ['x509', '-noout', '-checkip', '::ffff:0.0.0.16', '-in', path], { encoding: 'utf8' }), /does NOT match certificate/);
    assert.match(execFileSync('openssl', ['x509', '-noout', '-checkip', 'fd00::10', '-in', path], { encoding: 'utf8' }), /does match certificate/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a certificate valid past 2049 uses GeneralizedTime and reads back', async () => {
  const made = await createSelfSignedCertificate('far', ['localhost'], 365 * 40, new Date('2026-01-01T00:00:00Z'));
  assert.match(new X509Certificate(made.cert).validTo, /2065/);
});

test('auto is on exactly when the API, the default endpoint or the address pool reaches off loopback', () => {
  const wanted = (document: Record<string, unknown>) => tlsWanted(parseConfig(document, 'x', '/srv'));
  assert.equal(wanted({}), false);
  assert.equal(wanted({ api: { listen: '0.0.0.0:8440' } }), true);
  assert.equal(wanted({ api: { listen: '127.0.0.2:8440' } }), false);
  assert.equal(wanted({ endpoints: { default: { ipAddress: '10.0.0.5' } } }), true);
  assert.equal(wanted({ endpoints: { addressPool: ['127.10.0.0/16'] } }), false);
  assert.equal(wanted({ endpoints: { addressPool: ['127.0.0.0/8', '192.168.10.0/24'] } }), true);
  assert.equal(wanted({ endpoints: { addressPool: ['0.0.0.0/0'] } }), true);
  assert.equal(wanted({ api: { listen: '0.0.0.0:8440', tls: 'off' } }), false);
  assert.equal(wanted({ api: { tls: 'on' } }), true);
});

test('the self-signed certificate is made once, kept (key 0600) and reused; a configured pair must match', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-tls-'));
  try {
    const config = parseConfig({ dataDir: dir, api: { tls: 'on' } }, 'x', dir);
    const first = (await loadTlsMaterial(config))!;
    assert.equal(first.origin, 'self-signed');
    assert.equal(statSync(join(dir, 'tls.key')).mode & 0o777, 0o600);
    assert.equal((await loadTlsMaterial(config))!.fingerprint, first.fingerprint, 'the same certificate on the next start');
    assert.equal(await loadTlsMaterial(parseConfig({ dataDir: dir }, 'x', dir)), undefined, 'off on loopback by default');

    const other = await createSelfSignedCertificate('other', ['localhost']);
    execFileSync('bash', ['-c', `cat > ${join(dir, 'other.key')}`], { input: other.key });
    const mismatched = parseConfig({ dataDir: dir, api: { tls: { cert: 'tls.crt', key: 'other.key' } } }, 'x', dir);
    await assert.rejects(() => loadTlsMaterial(mismatched), /api\.tls: the key does not belong to the certificate/);
    const configured = (await loadTlsMaterial(parseConfig({ dataDir: dir, api: { tls: { cert: 'tls.crt', key: 'tls.key' } } }, 'x', dir)))!;
    assert.equal(configured.origin, 'configured');
    assert.equal(configured.fingerprint, first.fingerprint);
    assert.equal(readFileSync(join(dir, 'tls.crt'), 'utf8').startsWith('-----BEGIN CERTIFICATE-----'), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
