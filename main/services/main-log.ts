import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';

export type MainLogger = Logger;

/**
 * The desktop main process's logger (pino, like the relay's): every record as JSON in
 * `<dataDir>/lifeline.log` (with a child per tab naming its relay, VM and kind), and the message
 * of each info-or-worse record as a plain line through `echo` (the terminal of `npm run web`,
 * Electron's stderr), as before. Without a file (tests), only the echo.
 */
export function createMainLogger(options: { file?: string; echo: (line: string) => void; level?: pino.Level }): MainLogger {
  const echo = {
    write(record: string): void {
      try {
        options.echo(String((JSON.parse(record) as { msg?: unknown }).msg ?? ''));
      } catch {
        // Not a record: nothing to show.
      }
    },
  };
  const streams: pino.StreamEntry[] = [{ level: 'info', stream: echo }];
  if (options.file) {
    mkdirSync(dirname(options.file), { recursive: true });
    streams.push({ level: options.level ?? 'debug', stream: pino.destination({ dest: options.file, mkdir: true, sync: false }) });
  }
  return pino({ level: options.level ?? 'debug', base: { component: 'desktop' } }, pino.multistream(streams));
}
