import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';

/*
 * A fleet's private keys kept in its database, sealed under a secret only the gateways hold
 * (LIFELINE_FLEET_SECRET): AES-256-GCM with a key derived by scrypt from the secret and a random
 * salt. Someone who reads the database (a backup, a replica) gets no private key.
 */

const PREFIX = 'sealed-v1';
export const MIN_FLEET_SECRET_LENGTH = 32;

function keyOf(secret: string, salt: Buffer): Buffer {
  return scryptSync(secret, salt, 32, { N: 2 ** 14, r: 8, p: 1 });
}

/** `sealed-v1:<salt>:<iv>:<tag>:<ciphertext>`, each base64. */
export function seal(plaintext: string, secret: string): string {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(secret, salt), iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [PREFIX, salt, iv, cipher.getAuthTag(), body].map((part) => (typeof part === 'string' ? part : part.toString('base64'))).join(':');
}

/** The plaintext, or undefined when `secret` is not the one it was sealed with (or the text is not sealed). */
export function unseal(sealed: string, secret: string): string | undefined {
  const [prefix, ...parts] = sealed.split(':');
  if (prefix !== PREFIX || parts.length !== 4) return undefined;
  const [salt, iv, tag, body] = parts.map((part) => Buffer.from(part, 'base64')) as [Buffer, Buffer, Buffer, Buffer];
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyOf(secret, salt), iv);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
