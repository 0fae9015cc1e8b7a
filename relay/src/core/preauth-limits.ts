/**
 * Limits on connections that have not authenticated yet, as OpenSSH's MaxStartups and
 * PerSourceMaxStartups, and a growing delay for repeated authentication failures from one
 * address. Pure logic: callers pass the clock and the dice.
 */

/** `start:rate:full` (OpenSSH's MaxStartups): past `start` unauthenticated connections, drop new ones with `rate`% chance, rising linearly to 100% at `full`. */
export interface MaxStartups {
  start: number;
  rate: number;
  full: number;
}

export function parseMaxStartups(text: string): MaxStartups | undefined {
  const match = /^(\d{1,6})(?::(\d{1,3}):(\d{1,6}))?$/.exec(text.trim());
  if (!match) return undefined;
  const start = Number(match[1]);
  if (match[2] === undefined) return start > 0 ? { start, rate: 100, full: start } : undefined;
  const rate = Number(match[2]);
  const full = Number(match[3]);
  if (start < 1 || rate > 100 || full < start) return undefined;
  return { start, rate, full };
}

export type DropReason = 'full' | 'random-early-drop' | 'per-source';

export interface StartupSlot {
  /** Ends the slot (authenticated, or closed); idempotent. */
  release(): void;
}

export class StartupLimiter {
  private total = 0;
  private readonly bySource = new Map<string, number>();

  constructor(
    private readonly limits: MaxStartups,
    private readonly perSource: number,
    private readonly random: () => number = Math.random,
  ) {}

  get pending(): number {
    return this.total;
  }

  /** A slot for a new unauthenticated connection from `source`, or why there is none. */
  admit(source: string): { ok: true; slot: StartupSlot } | { ok: false; reason: DropReason } {
    const fromSource = this.bySource.get(source) ?? 0;
    if (fromSource >= this.perSource) return { ok: false, reason: 'per-source' };
    const { start, rate, full } = this.limits;
    if (this.total >= full) return { ok: false, reason: 'full' };
    if (this.total >= start) {
      // OpenSSH: p = rate + (100 - rate) * (n - start) / (full - start), in percent.
      const chance = full === start ? 100 : rate + ((100 - rate) * (this.total - start)) / (full - start);
      if (this.random() * 100 < chance) return { ok: false, reason: 'random-early-drop' };
    }
    this.total++;
    this.bySource.set(source, fromSource + 1);
    let released = false;
    return {
      ok: true,
      slot: {
        release: () => {
          if (released) return;
          released = true;
          this.total--;
          const left = (this.bySource.get(source) ?? 1) - 1;
          if (left <= 0) this.bySource.delete(source);
          else this.bySource.set(source, left);
        },
      },
    };
  }
}

/**
 * Repeated authentication failures from one address wait longer and longer for their answer:
 * the first `free` in a row get it at once, then 250 ms doubling up to `maxDelayMs`. An address
 * quiet for `forgetAfterMs` starts over. At most `maxTracked` addresses are remembered.
 */
export class FailureBackoff {
  private readonly failures = new Map<string, { count: number; last: number }>();

  constructor(
    private readonly options: { free: number; maxDelayMs: number; forgetAfterMs: number; maxTracked?: number } = { free: 5, maxDelayMs: 8000, forgetAfterMs: 600_000 },
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Notes a failure from `source`; returns how long its refusal should wait. Only a quiet spell
   * (`forgetAfterMs`) forgets failures, not a success: with one valid token an address could
   * otherwise guess on at full speed, resetting its count with every other request.
   */
  fail(source: string): number {
    const at = this.now();
    const previous = this.failures.get(source);
    const count = previous && at - previous.last < this.options.forgetAfterMs ? previous.count + 1 : 1;
    this.failures.delete(source);
    this.failures.set(source, { count, last: at });
    // Oldest first in a Map: forget the longest-quiet addresses when too many are tracked.
    const cap = this.options.maxTracked ?? 10_000;
    while (this.failures.size > cap) this.failures.delete(this.failures.keys().next().value!);
    return this.delayFor(count);
  }

  private delayFor(count: number): number {
    const over = count - this.options.free;
    if (over <= 0) return 0;
    return Math.min(this.options.maxDelayMs, 250 * 2 ** Math.min(over - 1, 20));
  }
}
