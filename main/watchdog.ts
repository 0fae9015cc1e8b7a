/**
 * `node watchdog.js <embedded dir>`: started by the app (main/services/leftovers.ts) in its own
 * session with a pipe on stdin. When the pipe closes, the app has ended; whatever it could not
 * stop itself (it was killed with -9) is stopped here: the embedded relay and the lab VMs.
 */
import { rmSync } from 'node:fs';
import { embeddedFiles, reapEmbedded } from './services/leftovers.js';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: watchdog.js <embedded dir>\n');
  process.exit(2);
}
// A terminal closing, or Ctrl-C in it, must not end the watchdog before the app.
for (const signal of ['SIGHUP', 'SIGINT'] as const) process.on(signal, () => undefined);

let done = false;
const reap = async (): Promise<void> => {
  if (done) return;
  done = true;
  try {
    await reapEmbedded(dir, { command: process.execPath, env: {} });
  } finally {
    rmSync(embeddedFiles(dir).watchdog, { force: true });
    process.exit(0);
  }
};
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => void reap());
process.stdin.on('close', () => void reap());
process.stdin.on('error', () => void reap());
