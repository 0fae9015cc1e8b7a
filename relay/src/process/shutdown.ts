import closeWithGrace from 'close-with-grace';

/** Why the process is ending: a signal, an error that escaped every handler, or a call to `close()`. */
export interface ShutdownCause {
  signal?: string;
  error?: unknown;
}

export interface ShutdownOptions {
  /** A close that takes longer than this ends the process with code 1. */
  graceMs: number;
  /** Where the helper's own lines go (a second signal, a timeout, a failed close). */
  log: (message: string) => void;
}

/**
 * The one shutdown path of the relay CLI, browser mode and the Electron main process, on
 * close-with-grace (fastify's): `close` runs once, whatever ends the process — SIGINT, SIGTERM,
 * SIGHUP and the other terminating signals, an uncaught exception or unhandled rejection, the
 * event loop running dry, or `close()` here. The process then exits 0, or 1 after an error or a
 * close that failed; a second signal or error, or a close that outlasts `graceMs`, exits 1 at once.
 */
export function onShutdown(options: ShutdownOptions, close: (cause: ShutdownCause) => Promise<void>): { close(): void } {
  const logger = {
    error: (message: unknown): void => options.log(message instanceof Error ? (message.stack ?? message.message) : String(message)),
  };
  const handle = closeWithGrace({ delay: options.graceMs, logger }, async ({ signal, err }) => {
    await close({ ...(signal && { signal }), ...(err && { error: err }) });
  });
  return { close: () => handle.close() };
}
