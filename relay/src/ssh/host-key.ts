import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { writeFileDurable } from '../store/durable-file.js';
import { fingerprintOf } from '../core/ssh-public-key.js';

export interface HostKey {
  type: string;
  /** OpenSSH private key text; stays in the relay's memory and data folder. */
  privateKey: string;
  publicKey: string;
  fingerprint: string;
}

/**
 * ssh2's generator drops a leading zero byte of the public key about once in 250 keys, which
 * makes the key unreadable (ssh2 1.17); generate until the key reads back whole.
 */
export function generateEd25519(): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'lifeline-relay' });
    const parsed = ssh2.utils.parseKey(pair.private);
    if (!(parsed instanceof Error) && parsed.getPublicSSH().length === 51) return pair;
  }
}

/**
 * Loads the relay's Ed25519 host key from the data folder, creating it (mode 0600) on first start.
 * `fromEnvironment` (LIFELINE_SSH_HOST_KEY: an OpenSSH private key) is used instead when given,
 * and nothing is written: for a relay whose host key must not touch the disk.
 */
export function loadOrCreateHostKey(dataDir: string, fromEnvironment?: string, kind = { file: 'ssh_host_ed25519_key', what: 'SSH host key', change: 'clients will then see a new host key' }): HostKey {
  if (fromEnvironment !== undefined) return describeHostKey(fromEnvironment, 'LIFELINE_SSH_HOST_KEY');
  const file = join(dataDir, kind.file);
  let privateKey: string;
  try {
    privateKey = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const pair = generateEd25519();
    // On the disk before any client sees it: a crash must not leave an empty host key behind.
    writeFileDurable(file, pair.private, 0o600, { exclusive: true });
    writeFileDurable(`${file}.pub`, `${pair.public}\n`, 0o644);
    privateKey = pair.private;
  }
  chmodSync(file, 0o600);
  if (privateKey.trim() === '') {
    throw new Error(`the ${kind.what} ${file} is empty (written when the disk failed?): restore it from a backup, or remove it to make a new one (${kind.change})`);
  }
  return describeHostKey(privateKey, file);
}

export function describeHostKey(privateKey: string, source: string): HostKey {
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error) throw new Error(`cannot read the SSH host key ${source}: ${parsed.message}`);
  if (!parsed.isPrivateKey()) throw new Error(`the SSH host key ${source} is a public key; give the private key (OpenSSH format)`);
  const publicBlob = parsed.getPublicSSH();
  return {
    type: parsed.type,
    privateKey,
    publicKey: `${parsed.type} ${publicBlob.toString('base64')}`,
    fingerprint: fingerprintOf(publicBlob),
  };
}
