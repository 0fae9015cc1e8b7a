import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detailedStatus, mayAuthenticate, parseRfc3339, resolveExpiration, revocationReason, type ConsoleRecord } from './console-rules.js';

const now = Date.parse('2026-11-22T12:00:00Z');
const policy = { defaultTtlMs: 86_400_000, maxTtlMs: 30 * 86_400_000 };
const record: ConsoleRecord = {
  virtualMachine: 'vm1',
  enabled: true,
  keyData: 'ssh-ed25519 AAAA',
  keyFingerprint: 'SHA256:a',
  expiration: now + 1000,
  accessId: 'id-1',
  createdAt: now,
  updatedAt: now,
};

test('RFC 3339 needs a zone and a real calendar date', () => {
  assert.equal(parseRfc3339('2026-11-23T21:00:00Z'), Date.parse('2026-11-23T21:00:00Z'));
  assert.equal(parseRfc3339('2026-11-23T23:00:00+02:00'), Date.parse('2026-11-23T21:00:00Z'));
  assert.equal(parseRfc3339('2026-11-23t21:00:00.123456z'), Date.parse('2026-11-23T21:00:00.123Z'));
  for (const bad of ['2026-11-23T21:00:00', '2026-11-23', '2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '2026-11-23T24:00:00Z', '2026-11-23T21:00:00+25:00', 'tomorrow', '']) {
    assert.equal(parseRfc3339(bad), undefined, bad);
  }
});

test('expiration: default TTL when omitted, future only, within max TTL', () => {
  assert.deepEqual(resolveExpiration(undefined, now, policy), { ok: true, value: now + 86_400_000 });
  assert.equal(resolveExpiration('2026-11-22T11:59:59Z', now, policy).ok, false);
  assert.equal(resolveExpiration('2026-11-22T12:00:00Z', now, policy).ok, false);
  assert.equal(resolveExpiration('2026-12-22T12:00:00Z', now, policy).ok, true);
  const beyond = resolveExpiration('2026-12-22T12:00:01Z', now, policy);
  assert.equal(beyond.ok, false);
  assert.match(!beyond.ok ? beyond.message : '', /at most 2026-12-22T12:00:00.000Z/);
});

test('status and admission follow enabled, expiry and key', () => {
  assert.equal(detailedStatus(record, now), 'Ready');
  assert.equal(detailedStatus({ ...record, enabled: false }, now), 'Disabled');
  assert.equal(detailedStatus(record, now + 1000), 'Expired');
  assert.equal(mayAuthenticate(record, 'SHA256:a', now), true);
  assert.equal(mayAuthenticate(record, 'SHA256:b', now), false);
  assert.equal(mayAuthenticate(record, 'SHA256:a', now + 1000), false);
  assert.equal(mayAuthenticate(undefined, 'SHA256:a', now), false);
});

test('revocation names the first reason that applies', () => {
  const grant = { virtualMachine: 'vm1', accessId: 'id-1', keyFingerprint: 'SHA256:a' };
  assert.equal(revocationReason(grant, record, now), undefined);
  assert.equal(revocationReason(grant, undefined, now), 'deleted');
  assert.equal(revocationReason(grant, { ...record, accessId: 'id-2' }, now), 'deleted');
  assert.equal(revocationReason(grant, { ...record, enabled: false }, now), 'disabled');
  assert.equal(revocationReason(grant, { ...record, keyFingerprint: 'SHA256:b' }, now), 'rekeyed');
  assert.equal(revocationReason(grant, record, now + 1000), 'expired');
});
