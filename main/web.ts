/**
 * `npm run web -- --port <n> [--relay-config <file>] [--data-dir DIR] [--no-embedded]`: browser
 * mode. Starts the embedded relay (on the given config, or on lab VMs; none with --no-embedded), the main-process services, and serves the renderer on
 * 127.0.0.1 behind a one-time token printed to stdout.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { desktopDataDir } from './services/data-dir.js';
import { appRoot, startDesktop } from './services/desktop-app.js';
import { AlreadyRunningError } from './services/instance-lock.js';
import { onShutdown } from '@lifeline/relay/client';
import { BrowserModeServer } from './web/browser-mode-server.js';

// A closed terminal (SIGHUP) makes writes to it fail: that must not stop the shutdown that follows.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, 'relay-config': { type: 'string' }, 'data-dir': { type: 'string' }, 'no-embedded': { type: 'boolean', default: false } }, strict: true });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('lifeline web: --port must be 0-65535\n');
  process.exit(2);
}
const dataDir = values['data-dir'] ?? desktopDataDir();
let app: Awaited<ReturnType<typeof startDesktop>>;
try {
  app = await startDesktop({ dataDir, relayConfig: values['relay-config'], embedded: !values['no-embedded'], log: (line) => process.stderr.write(`${line}\n`) });
} catch (error) {
  process.stderr.write(`lifeline web: ${(error as Error).message}\n`);
  process.exit(error instanceof AlreadyRunningError ? 3 : 1);
}
const server = new BrowserModeServer({ port, service: app.service, rendererDir: join(appRoot(), 'renderer', 'dist') });

/** However browser mode ends (Ctrl-C, SIGTERM, the terminal closed, a bug), the relay and the lab VMs stop with it. */
const closeAll = async (): Promise<void> => {
  process.stderr.write('Stopping…\n');
  await server.close().catch(() => undefined);
  await app.close().catch(() => undefined);
};
onShutdown({ graceMs: 20_000, log: (message) => process.stderr.write(`lifeline web: ${message}\n`) }, async ({ error }) => {
  if (error !== undefined) process.stderr.write(`lifeline web: internal error, shutting down: ${(error as Error)?.stack ?? String(error)}\n`);
  await closeAll();
});

try {
  const url = await server.start();
  process.stdout.write(`Lifeline is running in browser mode. Open (works once):\n${url}\n`);
} catch (error) {
  process.stderr.write(`lifeline web: cannot listen on 127.0.0.1:${port}: ${(error as Error).message}\n`);
  await closeAll();
  process.exit(1);
}
