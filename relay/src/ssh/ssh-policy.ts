import ssh2, { type PublicKeyAuthContext } from 'ssh2';
import type { ConsoleDirectory } from '../sessions/console-seam.js';
import { detailedStatus, mayAuthenticate, type SessionGrant } from '../core/console-rules.js';
import { fingerprintOf } from '../core/ssh-public-key.js';
import type { Store } from '../store/store.js';
import type { RefusalRecorder } from '../audit/refusal-recorder.js';
import type { Logger } from '../logger.js';

/** What the SSH side allows: its algorithms, who may log in, and how many channels a console may open. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * What the relay offers, so that ssh-audit finds nothing to fail or warn about: curve25519 key
 * exchange only (no NIST curves, no SHA-1 groups), the Ed25519 host key, AEAD ciphers first, then
 * AES-CTR, which only ever pairs with the encrypt-then-MAC SHA-2 MACs offered (the MACs are unused
 * with an AEAD cipher), and no compression. AES-CTR is there for the SSH libraries automation uses
 * that have no AEAD cipher (paramiko 2.12 in Debian 12; Go's x/crypto before 2022). ssh2 adds the
 * strict key exchange marker (kex-strict-s-v00@openssh.com) itself. OpenSSH ≥ 6.5, PuTTY ≥ 0.65,
 * ssh2's client, paramiko ≥ 2.7 and asyncssh all speak these.
 */
export const SSH_ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org'],
  serverHostKey: ['ssh-ed25519'],
  cipher: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'],
  hmac: ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com'],
  compress: ['none'],
};

/** Why a login was refused, for the log and the audit trail (the client hears only the generic failure). */
export type LoginRefusal = 'not-an-access-id' | 'unknown-access-id' | 'vm-unknown' | 'disabled' | 'expired' | 'wrong-key' | 'bad-signature' | 'method-not-allowed' | 'check-failed';

/** Refusals look the same to the client whatever was wrong; which check failed is returned for the log and the trail. */
export async function checkConsoleKey(ctx: PublicKeyAuthContext, store: Store, virtualMachines: ConsoleDirectory): Promise<{ grant: SessionGrant; expiration: number } | 'key-ok' | LoginRefusal> {
  if (!UUID.test(ctx.username)) return 'not-an-access-id';
  const record = await store.getConsoleByAccessId(ctx.username);
  const keyFingerprint = fingerprintOf(ctx.key.data);
  if (!record) return 'unknown-access-id';
  if (!virtualMachines.get(record.virtualMachine)) return 'vm-unknown';
  if (!mayAuthenticate(record, keyFingerprint, Date.now())) {
    const status = detailedStatus(record, Date.now());
    return status === 'Disabled' ? 'disabled' : status === 'Expired' ? 'expired' : 'wrong-key';
  }
  if (!ctx.signature || !ctx.blob) return 'key-ok';
  const key = ssh2.utils.parseKey(record.keyData);
  if (key instanceof Error || !key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return 'bad-signature';
  return { grant: { virtualMachine: record.virtualMachine, accessId: record.accessId, keyFingerprint, ...(record.recording && { recording: record.recording }) }, expiration: record.expiration };
}

/**
 * Channel opens per console and minute, per allowed concurrent channel. A shell or forward that
 * displaces the last one costs two audit events; thousands of them in seconds would flush the
 * trail. Ten channels at once may each be reopened six times a minute: far above what a person or
 * the desktop does (a tab opens one or two), far below a flood.
 */
export const CHANNEL_OPENS_PER_MINUTE_PER_SESSION = 6;

/** Channel opens per console (by access id) and minute: a key holder cannot open thousands. */
export class ChannelBudget {
  private readonly budgets = new Map<string, { left: number; since: number }>();

  constructor(private readonly maxSessions: number) {}

  /** Takes one channel open from the console's budget: six times `maxSessions` a minute (60 by default). */
  take(accessId: string): boolean {
    const now = Date.now();
    let budget = this.budgets.get(accessId);
    if (!budget || now - budget.since >= 60_000) {
      if (this.budgets.size > 10_000) this.budgets.clear();
      budget = { left: this.maxSessions * CHANNEL_OPENS_PER_MINUTE_PER_SESSION, since: now };
      this.budgets.set(accessId, budget);
    }
    if (budget.left <= 0) return false;
    budget.left--;
    return true;
  }
}

/** The channels of one connection: at most `maxSessions` open at once, and the console's budget a minute. */
export class ConnectionChannels {
  private open = 0;

  constructor(
    private readonly maxSessions: number,
    private readonly budget: ChannelBudget,
  ) {}

  /** Why a new channel may not open (in words the client is shown), or undefined when it may. */
  refusal(accessId: string | undefined): string | undefined {
    const max = this.maxSessions;
    if (this.open >= max) return `too many channels open on this connection (at most ${max}, ssh.maxSessions); close one first`;
    if (accessId && !this.budget.take(accessId)) return `too many channels opened for this console in the last minute (at most ${max * CHANNEL_OPENS_PER_MINUTE_PER_SESSION}); wait a minute`;
    return undefined;
  }

  counted(channel: { once(event: 'close', listener: () => void): unknown }): void {
    this.open++;
    channel.once('close', () => void this.open--);
  }
}

/** A refusal into the log (when it is the first of its kind this minute) and the audit trail, coalesced and capped. */
export function recordSshRefusal(refusals: RefusalRecorder | undefined, event: { type: string; remoteAddress: string } & Record<string, unknown>, log: Logger): void {
  const { remoteAddress, ...rest } = event;
  let written = true;
  try {
    // Charged to the address's SSH budget: a flood of API refusals from it does not hide its failed logins.
    written = refusals?.record(event, JSON.stringify(event), [`ssh:${remoteAddress}`]) ?? true;
  } catch (error) {
    log.error({ err: (error as Error).message }, 'cannot write the audit trail');
  }
  if (written) log.info({ ...rest }, event.type === 'ssh.login.failed' ? 'SSH login refused' : 'SSH channel refused');
}
