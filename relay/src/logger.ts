import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** The relay's one logger factory: JSON lines on stdout; children add `vm`, `session`, `endpoint`. */
export function createLogger(level: string, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino({ level, base: { service: 'lifeline-relay' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
