import { createInterface } from 'node:readline/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { parseDuration } from '@lifeline/relay/client';
import { CliContext, type GlobalFlags } from './context.js';
import { usageError } from './errors.js';
import { parseOutputFormat, render, renderFields, type Column } from './output.js';

/** The context of the command being run, from its options and the global ones. */
export function contextOf(command: Command): CliContext {
  const all = command.optsWithGlobals<{ relay?: string; tokenFile?: string; output?: string; yes?: boolean }>();
  const flags: GlobalFlags = { output: parseOutputFormat(all.output ?? 'table'), yes: all.yes === true, ...(all.relay && { relay: all.relay }), ...(all.tokenFile && { tokenFile: all.tokenFile }) };
  return new CliContext(flags);
}

export function print<T>(context: CliContext, data: unknown, rows: readonly T[], columns: ReadonlyArray<Column<T>>, empty?: string): void {
  process.stdout.write(render(context.flags.output, data, { rows, columns, ...(empty && { empty }) }));
}

/** One resource: JSON/YAML whole, or `field: value` lines. */
export function printOne(context: CliContext, data: unknown, fields: ReadonlyArray<[string, string | number | boolean | undefined]>): void {
  process.stdout.write(context.flags.output === 'table' ? renderFields(fields) : render(context.flags.output, data, { rows: [], columns: [] }));
}

/** A line for the person at the terminal (stderr, so that stdout stays the data). */
export const say = (line: string): void => void process.stderr.write(`${line}\n`);

/** Asks before doing something that cannot be undone; --yes answers for the user, and without a terminal it must. */
export async function confirm(context: Pick<CliContext, 'flags'>, question: string): Promise<void> {
  if (context.flags.yes) return;
  if (!process.stdin.isTTY) throw usageError(`${question} Not asked without a terminal: pass --yes to confirm.`);
  const readline = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await readline.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw usageError('Not confirmed: nothing was changed.');
  } finally {
    readline.close();
  }
}

// --- option parsers (a bad value exits 2, naming the option) ------------------------------

export function parseBoolean(value: string): boolean {
  if (/^(true|yes|1)$/i.test(value)) return true;
  if (/^(false|no|0)$/i.test(value)) return false;
  throw new InvalidArgumentError('expected true or false.');
}

export function parseDurationMs(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as 90s, 15m, 2h, 7d or 1h30m.');
  return ms;
}

export function parseSeconds(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) throw new InvalidArgumentError('expected a number of seconds, such as 30.');
  return Number(value) * 1000;
}

export function parseCount(value: string): number {
  if (!/^\d{1,6}$/.test(value)) throw new InvalidArgumentError('expected a whole number (0 or more).');
  return Number(value);
}

export function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('expected a port, 0 to 65535 (0: any free one).');
  return Number(value);
}

export function parseRegex(value: string): RegExp {
  try {
    return new RegExp(value);
  } catch (error) {
    throw new InvalidArgumentError(`not a regular expression (${(error as Error).message}).`);
  }
}

export function parseRfc3339(value: string): string {
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/i.test(value) || Number.isNaN(Date.parse(value))) {
    throw new InvalidArgumentError('expected an RFC 3339 time with a time zone, such as 2026-12-24T18:00:00Z.');
  }
  return value;
}

/** `--expiration T` or `--expires-in D` (not both) as the API's expiration. */
export function expirationOf(options: { expiration?: string; expiresIn?: number }): string | undefined {
  if (options.expiration && options.expiresIn !== undefined) throw usageError('Give --expiration or --expires-in, not both.');
  if (options.expiresIn !== undefined) return new Date(Date.now() + options.expiresIn).toISOString();
  return options.expiration;
}

/** "2 h 5 min left", "expired 3 min ago". */
export function timeLeft(iso: string | undefined, now = Date.now()): string | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso) - now;
  const minutes = Math.round(Math.abs(ms) / 60_000);
  const text = minutes >= 2880 ? `${Math.round(minutes / 1440)} d` : minutes >= 120 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`;
  return ms >= 0 ? `${text} left` : `expired ${text} ago`;
}
