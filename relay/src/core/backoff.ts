/** Reconnect delays: doubling from `initialMs` up to `maxMs`, so a restarting VM is picked up quickly without busy-looping. */
export function backoffDelay(attempt: number, initialMs = 100, maxMs = 2000): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, Math.min(attempt, 20)));
}
