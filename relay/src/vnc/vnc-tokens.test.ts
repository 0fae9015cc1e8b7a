import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VNC_TOKEN_TTL_MS, VncTokenService } from './vnc-tokens.js';

const grant = { virtualMachine: 'vm1', accessId: 'a', keyFingerprint: 'SHA256:k' };

test('a token is single use', () => {
  const tokens = new VncTokenService();
  const { token } = tokens.mint(grant, 'default');
  assert.equal(tokens.peek(token, 'default'), true);
  assert.deepEqual(tokens.redeem(token, 'default'), { ok: true, grant, endpoint: 'default' });
  assert.deepEqual(tokens.redeem(token, 'default'), { ok: false, reason: 'unknown' });
  assert.equal(tokens.peek(token, 'default'), false);
});

test('a token expires 60 s after minting and is bound to its endpoint', () => {
  let now = 1_000_000;
  const tokens = new VncTokenService(VNC_TOKEN_TTL_MS, () => now);
  const first = tokens.mint(grant, 'default');
  assert.equal(first.expiresAt, now + VNC_TOKEN_TTL_MS);
  now += VNC_TOKEN_TTL_MS;
  assert.deepEqual(tokens.redeem(first.token, 'default'), { ok: false, reason: 'expired' });
  const second = tokens.mint(grant, 'default');
  assert.equal(tokens.peek(second.token, 'ops'), false);
  assert.deepEqual(tokens.redeem(second.token, 'ops'), { ok: false, reason: 'wrong-endpoint' });
  assert.deepEqual(tokens.redeem(second.token, 'default'), { ok: false, reason: 'unknown' }, 'a failed redemption uses the token up');
  assert.deepEqual(tokens.redeem('forged', 'default'), { ok: false, reason: 'unknown' });
});

test('expired tokens are swept when new ones are minted', () => {
  let now = 0;
  const tokens = new VncTokenService(VNC_TOKEN_TTL_MS, () => now);
  for (let i = 0; i < 10; i++) tokens.mint(grant, 'default');
  now += VNC_TOKEN_TTL_MS + 1;
  tokens.mint(grant, 'default');
  assert.equal(tokens.size, 1);
});
