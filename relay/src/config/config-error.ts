/** A config problem, named by its key path (`api.listen`, `virtualMachines[1].serial`). */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** A value as a message shows it: short, and never the whole of a long string. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : `${typeof value} ${String(value).slice(0, 40)}`;
}
