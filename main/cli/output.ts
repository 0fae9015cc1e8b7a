import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { usageError } from './errors.js';

/** YAML's writer, loaded when first asked for (it costs startup every command would pay). */
const yaml = (): typeof Yaml => createRequire(import.meta.url)('yaml') as typeof Yaml;

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

export function parseOutputFormat(value: string): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
  throw usageError(`-o/--output must be one of ${OUTPUT_FORMATS.join(', ')}, not "${value}"`);
}

/** A table column: its heading and how a row shows in it. */
export interface Column<T> {
  heading: string;
  value: (row: T) => string | number | boolean | undefined;
}

function cell(value: string | number | boolean | undefined): string {
  if (value === undefined || value === '') return '-';
  return String(value).replace(/[\r\n\t]+/g, ' ');
}

/** kubectl's layout: upper-case headings, columns padded with spaces, no borders. */
export function renderTable<T>(rows: readonly T[], columns: ReadonlyArray<Column<T>>): string {
  const cells = [columns.map((c) => c.heading.toUpperCase()), ...rows.map((row) => columns.map((c) => cell(c.value(row))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells.map((line) => line.map((text, i) => (i === line.length - 1 ? text : text.padEnd(widths[i]!))).join('   ').trimEnd()).join('\n') + '\n';
}

/** Prints `data` as asked: JSON and YAML whole (machine-readable), a table of `rows` by `columns`. */
export function render<T>(format: OutputFormat, data: unknown, table: { rows: readonly T[]; columns: ReadonlyArray<Column<T>>; empty?: string }): string {
  if (format === 'json') return `${JSON.stringify(data, null, 2)}\n`;
  if (format === 'yaml') return yaml().stringify(data, { lineWidth: 0 });
  if (table.rows.length === 0) return `${table.empty ?? 'Nothing to show.'}\n`;
  return renderTable(table.rows, table.columns);
}

/** One resource as `FIELD  value` lines (for table output of a single object). */
export function renderFields(fields: ReadonlyArray<[string, string | number | boolean | undefined]>): string {
  const width = Math.max(...fields.map(([name]) => name.length));
  return fields.map(([name, value]) => `${`${name}:`.padEnd(width + 2)}${cell(value)}`).join('\n') + '\n';
}
