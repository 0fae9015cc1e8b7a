/**
 * `npm run web -- --port <n> [--relay-config <file>]`: browser mode. Starts the embedded relay
 * (on the given config, or on lab VMs), the main-process services, and serves the renderer on
 * 127.0.0.1 behind a one-time token printed to stdout.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { appRoot, startDesktop } from './services/desktop-app.js';
import { BrowserModeServer } from './web/browser-mode-server.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, 'relay-config': { type: 'string' }, 'data-dir': { type: 'string' } }, strict: true });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('lifeline web: --port must be 0-65535\n');
  process.exit(2);
}
const dataDir = values['data-dir'] ?? join(process.env.XDG_DATA_HOME ?? join(process.env.HOME ?? '.', '.local', 'share'), 'lifeline');
const app = await startDesktop({ dataDir, relayConfig: values['relay-config'], log: (line) => process.stderr.write(`${line}\n`) });
const server = new BrowserModeServer({ port, service: app.service, rendererDir: join(appRoot(), 'renderer', 'dist') });
const url = await server.start();
process.stdout.write(`Lifeline is running in browser mode. Open (works once):\n${url}\n`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  process.stderr.write('Stopping…\n');
  await server.close();
  await app.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
