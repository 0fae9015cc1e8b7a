import { createPublicKey } from 'node:crypto';
import ssh2 from 'ssh2';
import { fingerprintOf } from '../core/ssh-public-key.js';

/** A validated OpenSSH public key: the wire blob is what SSH clients present during auth. */
export interface SshPublicKey {
  type: string;
  blob: Buffer;
  /** `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  bits: number;
  comment: string;
  /** `type base64` without the comment: the canonical form to compare and store. */
  canonical: string;
}

export type KeyParseResult = { ok: true; key: SshPublicKey } | { ok: false; message: string };

const ECDSA_BITS: Record<string, number> = { 'ecdsa-sha2-nistp256': 256, 'ecdsa-sha2-nistp384': 384, 'ecdsa-sha2-nistp521': 521 };
export const MIN_RSA_BITS = 2048;
export const ACCEPTED_KEY_TYPES = ['ssh-ed25519', ...Object.keys(ECDSA_BITS), 'ssh-rsa'];

/**
 * Validates `keyData` as a Console resource's key: one OpenSSH public key line of an accepted
 * type and strength. ssh2 (the library that checks the key at login) parses it; the project's
 * policy is on top: one line, a public key only, the listed types, RSA of 2048 bits or more, and
 * a body that is exactly the key (ssh2 ignores trailing bytes; re-encoding must give it back).
 */
export function parseSshPublicKey(keyData: string): KeyParseResult {
  const fields = keyData.trim().split(/\s+/);
  if (keyData.includes('\n') || fields.length < 2) {
    return { ok: false, message: 'keyData must be one OpenSSH public key line: "<type> <base64> [comment]"' };
  }
  const [type, encoded] = fields as [string, string];
  if (!ACCEPTED_KEY_TYPES.includes(type)) {
    return { ok: false, message: `key type "${type.slice(0, 40)}" is not accepted; use one of ${ACCEPTED_KEY_TYPES.join(', ')}` };
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return { ok: false, message: 'the key body is not valid base64' };
  const parsed = ssh2.utils.parseKey(`${type} ${encoded}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || key.isPrivateKey() || key.type !== type) return { ok: false, message: `the key body does not hold a ${type} key` };
  const blob = Buffer.from(encoded, 'base64');
  if (!key.getPublicSSH().equals(blob)) return { ok: false, message: `the ${type} key body is malformed or has trailing bytes` };
  let bits = ECDSA_BITS[type] ?? 256;
  if (type === 'ssh-rsa') {
    bits = createPublicKey(key.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) return { ok: false, message: `RSA keys must have at least ${MIN_RSA_BITS} bits; this one has ${bits}` };
  }
  return { ok: true, key: { type, blob, fingerprint: fingerprintOf(blob), bits, comment: fields.slice(2).join(' '), canonical: `${type} ${blob.toString('base64')}` } };
}
