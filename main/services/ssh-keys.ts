import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';

export interface KeyPair {
  /** OpenSSH private key: goes to the keychain and main's memory only. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… lifeline`: goes on the Console resource. */
  publicKey: string;
  fingerprint: string;
}

export function fingerprintOfBlob(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Reads a stored private key back; undefined when it is not a usable key. */
export function describePrivateKey(privateKey: string): KeyPair | undefined {
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error) return undefined;
  const blob = parsed.getPublicSSH();
  return { privateKey, publicKey: `${parsed.type} ${blob.toString('base64')} lifeline`, fingerprint: fingerprintOfBlob(blob) };
}

/** A new Ed25519 key. ssh2's generator drops a leading zero byte about once in 250 keys: keep only keys that read back whole. */
export function generateKeyPair(): KeyPair {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'lifeline' });
    const described = describePrivateKey(pair.private);
    if (described && Buffer.from(described.publicKey.split(' ')[1]!, 'base64').length === 51) return described;
  }
}
