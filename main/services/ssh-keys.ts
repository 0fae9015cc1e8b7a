import { fingerprintOf, generateEd25519 } from '@lifeline/relay/client';
import ssh2 from 'ssh2';

export interface KeyPair {
  /** OpenSSH private key: goes to the keychain and main's memory only. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… lifeline`: goes on the Console resource. */
  publicKey: string;
  fingerprint: string;
}

/** The OpenSSH fingerprint of a key's wire blob (the relay's own function). */
export const fingerprintOfBlob = fingerprintOf;

/** Reads a stored private key back; undefined when it is not a usable key. */
export function describePrivateKey(privateKey: string): KeyPair | undefined {
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error) return undefined;
  const blob = parsed.getPublicSSH();
  return { privateKey, publicKey: `${parsed.type} ${blob.toString('base64')} lifeline`, fingerprint: fingerprintOfBlob(blob) };
}

/** A new Ed25519 key, from the relay's generator (which works around ssh2's dropped leading zero byte). */
export function generateKeyPair(): KeyPair {
  const described = describePrivateKey(generateEd25519().private);
  if (!described) throw new Error('internal error: a new ed25519 key does not read back');
  return described;
}
