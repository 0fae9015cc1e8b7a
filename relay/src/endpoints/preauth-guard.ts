import type { Socket } from 'node:net';
import { normalizeRemoteAddress } from '../core/cidr.js';
import type { DropReason, StartupLimiter } from '../core/preauth-limits.js';
import type { PreauthMetrics, PreauthOutcome } from '../metrics/relay-metrics.js';

/** A connection in its pre-authentication phase (SSH: until authenticated; VNC port: until its WebSocket upgrade). */
export interface PreauthGuard {
  /** Why the connection is about to be closed, when the relay closes it (recorded when it closes). */
  outcome: PreauthOutcome;
  /** It is in: frees its MaxStartups slot and stops its grace timer. Idempotent. */
  passed(): void;
}

/**
 * Admits a new connection under MaxStartups and starts its grace timer, from the TCP accept.
 * Dropped: the socket is destroyed at once and undefined is returned. The phase ends exactly
 * once, by `passed()` or by the socket closing, and the metrics hear how.
 */
export function guardPreauth(
  socket: Socket,
  options: { startups: StartupLimiter; graceMs: number; metrics?: PreauthMetrics; onDropped?: (source: string, reason: DropReason) => void },
): PreauthGuard | undefined {
  const source = normalizeRemoteAddress(socket.remoteAddress);
  const admission = options.startups.admit(source);
  if (!admission.ok) {
    options.metrics?.dropped(admission.reason);
    options.onDropped?.(source, admission.reason);
    socket.destroy();
    return undefined;
  }
  options.metrics?.opened();
  let ended = false;
  const end = (outcome: PreauthOutcome): void => {
    if (ended) return;
    ended = true;
    clearTimeout(grace);
    admission.slot.release();
    options.metrics?.ended(outcome);
  };
  const guard: PreauthGuard = { outcome: 'closed', passed: () => end('authenticated') };
  const grace = setTimeout(() => {
    guard.outcome = 'grace-timeout';
    socket.destroy();
  }, options.graceMs);
  grace.unref();
  socket.once('close', () => end(guard.outcome));
  return guard;
}
