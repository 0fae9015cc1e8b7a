import { createHash } from 'node:crypto';

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

const ECDSA_CURVES: Record<string, { curve: string; pointLength: number; bits: number }> = {
  'ecdsa-sha2-nistp256': { curve: 'nistp256', pointLength: 65, bits: 256 },
  'ecdsa-sha2-nistp384': { curve: 'nistp384', pointLength: 97, bits: 384 },
  'ecdsa-sha2-nistp521': { curve: 'nistp521', pointLength: 133, bits: 521 },
};
export const MIN_RSA_BITS = 2048;
export const ACCEPTED_KEY_TYPES = ['ssh-ed25519', ...Object.keys(ECDSA_CURVES), 'ssh-rsa'];

/** Reads SSH wire-format strings (uint32 length + bytes) without copying. */
class WireReader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}
  readString(): Buffer | undefined {
    if (this.offset + 4 > this.buf.length) return undefined;
    const length = this.buf.readUInt32BE(this.offset);
    const start = this.offset + 4;
    if (start + length > this.buf.length) return undefined;
    this.offset = start + length;
    return this.buf.subarray(start, start + length);
  }
  get done(): boolean {
    return this.offset === this.buf.length;
  }
}

export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function mpintBits(mpint: Buffer): number {
  let i = 0;
  while (i < mpint.length && mpint[i] === 0) i++;
  if (i === mpint.length) return 0;
  return (mpint.length - i - 1) * 8 + (32 - Math.clz32(mpint[i]!));
}

/** Validates `keyData` as an OpenSSH public key line of an accepted type and strength. */
export function parseSshPublicKey(keyData: string): KeyParseResult {
  const fields = keyData.trim().split(/\s+/);
  if (keyData.includes('\n') || fields.length < 2) {
    return { ok: false, message: 'keyData must be one OpenSSH public key line: "<type> <base64> [comment]"' };
  }
  const [type, encoded] = fields as [string, string];
  if (!ACCEPTED_KEY_TYPES.includes(type)) {
    return { ok: false, message: `key type "${type.slice(0, 40)}" is not accepted; use one of ${ACCEPTED_KEY_TYPES.join(', ')}` };
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    return { ok: false, message: 'the key body is not valid base64' };
  }
  const blob = Buffer.from(encoded, 'base64');
  const reader = new WireReader(blob);
  const innerType = reader.readString()?.toString('latin1');
  if (innerType !== type) return { ok: false, message: `the key body does not hold a ${type} key` };

  let bits: number;
  if (type === 'ssh-ed25519') {
    const point = reader.readString();
    if (point?.length !== 32) return { ok: false, message: 'the ed25519 key body is malformed' };
    bits = 256;
  } else if (type === 'ssh-rsa') {
    const exponent = reader.readString();
    const modulus = reader.readString();
    if (!exponent || !modulus || mpintBits(exponent) === 0) return { ok: false, message: 'the RSA key body is malformed' };
    bits = mpintBits(modulus);
    if (bits < MIN_RSA_BITS) {
      return { ok: false, message: `RSA keys must have at least ${MIN_RSA_BITS} bits; this one has ${bits}` };
    }
  } else {
    const spec = ECDSA_CURVES[type]!;
    const curve = reader.readString()?.toString('latin1');
    const point = reader.readString();
    if (curve !== spec.curve || point?.length !== spec.pointLength || point[0] !== 4) {
      return { ok: false, message: `the ${type} key body is malformed` };
    }
    bits = spec.bits;
  }
  if (!reader.done) return { ok: false, message: `the ${type} key body has trailing bytes` };
  return {
    ok: true,
    key: {
      type,
      blob,
      fingerprint: fingerprintOf(blob),
      bits,
      comment: fields.slice(2).join(' '),
      canonical: `${type} ${blob.toString('base64')}`,
    },
  };
}
