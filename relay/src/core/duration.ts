/** Parses durations such as `90s`, `15m`, `24h`, `30d` (one or more number+unit pairs, e.g. `1h30m`). */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(trimmed); match; match = part.exec(trimmed)) {
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    consumed = part.lastIndex;
  }
  if (consumed !== trimmed.length || total <= 0) return undefined;
  return Math.round(total);
}

/** Says a duration the way a person would read it: `60 seconds`, `2 minutes`, `90 seconds`, `1 hour`. */
export function describeDuration(ms: number): string {
  const plural = (n: number, unit: string): string => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return plural(ms / 3_600_000, 'hour');
  if (ms % 60_000 === 0 && ms >= 60_000 && ms !== 60_000) return plural(ms / 60_000, 'minute');
  return plural(Math.max(1, Math.round(ms / 1000)), 'second');
}
