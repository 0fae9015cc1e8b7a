import type { AuditEventInput } from './audit-log.js';

/*
 * Refusals go to the audit trail without letting anyone flush it. Any valid token could write
 * 1,200 403s a second into the fsync'd trail and push its own changes out of the kept files; a
 * console key could do the same with failed channels. So, per window (a minute):
 * - the first refusal of a kind (same actor, address, request and answer) is written at once,
 *   before the client hears of it; the same refusal again is only counted, and one event with
 *   `repeated: N` and the time span is written when the window closes;
 * - each source (a token, an address) gets at most `perSourcePerWindow` events written; beyond
 *   that its refusals are counted into one `audit.suppressed` event, and all sources together at
 *   most ten times that, so a flood from many addresses is bounded too.
 * What is written is bounded by the limits, and what is kept in memory by what was written.
 */

export interface RefusalRecorderOptions {
  /** Refusal events written one by one per source (token or address) and window. */
  perSourcePerWindow: number;
  windowMs?: number;
  /** Appends to the trail; may throw (the disk refuses), and then the refusal counts as not recorded. */
  write(event: AuditEventInput): void;
  now?: () => number;
  /** A refusal that was only counted (`repeated`) or not written at all (`over-limit`). */
  onCoalesced?: (how: 'repeated' | 'over-limit') => void;
  /** A summary could not be written when the window closed. */
  onError?: (error: Error) => void;
}

interface Repeat {
  event: AuditEventInput;
  count: number;
  since: number;
  until: number;
}

interface SourceCount {
  written: number;
  suppressed: number;
  since: number;
  until: number;
}

export class RefusalRecorder {
  private readonly windowMs: number;
  private readonly now: () => number;
  private repeats = new Map<string, Repeat>();
  private sources = new Map<string, SourceCount>();
  private written = 0;
  private unattributed: { count: number; since: number; until: number } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RefusalRecorderOptions) {
    this.windowMs = options.windowMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  private get globalLimit(): number {
    return this.options.perSourcePerWindow * 10;
  }

  /**
   * Records one refusal: `kind` is what makes two refusals the same (actor, address, request,
   * answer), `sources` who is charged for it. Returns whether it was written now.
   */
  record(event: AuditEventInput, kind: string, sources: readonly string[]): boolean {
    const at = this.now();
    const repeat = this.repeats.get(kind);
    if (repeat) {
      repeat.count++;
      repeat.until = at;
      this.options.onCoalesced?.('repeated');
      return false;
    }
    const counts = sources.map((source) => this.sources.get(source));
    const over = sources.findIndex((_, index) => (counts[index]?.written ?? 0) >= this.options.perSourcePerWindow);
    if (over >= 0 || this.written >= this.globalLimit) {
      const charged = over >= 0 ? counts[over]! : undefined;
      if (charged) {
        charged.suppressed++;
        charged.until = at;
      } else {
        this.unattributed ??= { count: 0, since: at, until: at };
        this.unattributed.count++;
        this.unattributed.until = at;
      }
      this.options.onCoalesced?.('over-limit');
      this.arm();
      return false;
    }
    this.options.write(event);
    this.written++;
    this.repeats.set(kind, { event, count: 0, since: at, until: at });
    for (const [index, source] of sources.entries()) {
      const count = counts[index] ?? { written: 0, suppressed: 0, since: at, until: at };
      count.written++;
      this.sources.set(source, count);
    }
    this.arm();
    return true;
  }

  private arm(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.windowMs).unref();
  }

  /** Writes the window's summaries (repeats and suppressed counts) and starts a new window. */
  flush(): void {
    const { repeats, sources, unattributed } = this;
    this.repeats = new Map();
    this.sources = new Map();
    this.written = 0;
    this.unattributed = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    const iso = (ms: number): string => new Date(ms).toISOString();
    const summaries: AuditEventInput[] = [];
    for (const repeat of repeats.values()) {
      if (repeat.count > 0) summaries.push({ ...repeat.event, repeated: repeat.count, since: iso(repeat.since), until: iso(repeat.until) });
    }
    for (const [source, count] of sources) {
      if (count.suppressed > 0) summaries.push({ type: 'audit.suppressed', source, count: count.suppressed, since: iso(count.since), until: iso(count.until) });
    }
    if (unattributed) summaries.push({ type: 'audit.suppressed', source: '*', count: unattributed.count, since: iso(unattributed.since), until: iso(unattributed.until) });
    for (const summary of summaries) {
      try {
        this.options.write(summary);
      } catch (error) {
        this.options.onError?.(error as Error);
        return;
      }
    }
  }

  /** Writes what is pending; idempotent. */
  close(): void {
    this.flush();
  }
}
