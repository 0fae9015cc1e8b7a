import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import which from 'which';
import { ConsoleConnection } from '../services/console-connection.js';
import type { RelayApi } from '../services/relay-api.js';
import type { RelayRecord } from '../services/settings.js';
import type { CliContext } from './context.js';
import { CliError, EXIT } from './errors.js';
import { say } from './kit.js';
import { checkHeldKey, consoleRefusal, consoleTarget, type ConsoleTarget } from './openssh.js';

export interface VncOptions {
  endpoint?: string;
  identity?: string;
  proxyOnly: boolean;
  port?: number;
  viewer?: string;
}

/** Viewers looked for, with how each is pointed at 127.0.0.1:<port>. */
const VIEWERS: ReadonlyArray<{ command: string; args: (port: number) => string[] }> = [
  { command: 'vncviewer', args: (port) => [`127.0.0.1::${port}`] },
  { command: 'gvncviewer', args: (port) => [`127.0.0.1:${port - 5900}`] },
  { command: 'remmina', args: (port) => ['-c', `vnc://127.0.0.1:${port}`] },
  { command: 'vinagre', args: (port) => [`127.0.0.1::${port}`] },
  { command: 'krdc', args: (port) => [`vnc://127.0.0.1:${port}`] },
];

/** The viewer to start: `--viewer CMD` ({host} {port} {display} filled in, else `127.0.0.1::PORT` appended), else the first one found. */
export function viewerCommand(port: number, given: string | undefined): { command: string; args: string[] } | undefined {
  if (given !== undefined) {
    const words = given.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) throw new CliError('--viewer is empty.', EXIT.usage);
    const fill = (word: string): string => word.replaceAll('{host}', '127.0.0.1').replaceAll('{port}', String(port)).replaceAll('{display}', String(port - 5900));
    const templated = words.some((word) => /\{(host|port|display)\}/.test(word));
    return { command: words[0]!, args: [...words.slice(1).map(fill), ...(templated ? [] : [`127.0.0.1::${port}`])] };
  }
  if (process.platform === 'darwin') return { command: 'open', args: [`vnc://127.0.0.1:${port}`] };
  for (const viewer of VIEWERS) {
    if (viewer.command === 'gvncviewer' && port < 5900) continue; // it takes a display number
    if (which.sync(viewer.command, { nothrow: true })) return { command: viewer.command, args: viewer.args(port) };
  }
  return undefined;
}

/** Listens on 127.0.0.1: the port asked for, else the first free display port (5901…5999), else any. */
async function listen(server: Server, port: number | undefined): Promise<number> {
  const tryPort = (candidate: number): Promise<boolean> =>
    new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => (error.code === 'EADDRINUSE' && port === undefined ? resolve(false) : reject(error));
      server.once('error', onError);
      server.listen(candidate, '127.0.0.1', () => {
        server.off('error', onError);
        resolve(true);
      });
    });
  try {
    for (const candidate of port !== undefined ? [port] : [...Array.from({ length: 99 }, (_, i) => 5901 + i), 0]) if (await tryPort(candidate)) break;
  } catch (error) {
    throw new CliError(`Cannot listen on 127.0.0.1:${port} (${(error as NodeJS.ErrnoException).code}): choose another --port, or 0 for any free one.`);
  }
  return (server.address() as { port: number }).port;
}

/**
 * `lifeline vnc VM`: a local port whose every connection is the VM's screen (a `vnc:5900` channel
 * over its own SSH connection, as the desktop opens it). It stays up across viewer connections:
 * with --proxy-only until Ctrl-C, else until the viewer it started exits.
 */
export async function vnc(context: CliContext, vm: string, options: VncOptions): Promise<number> {
  const { record, api } = await context.relay(vm);
  const target = await consoleTarget(api, record, vm, options.endpoint);
  const privateKey = options.identity ? readIdentity(options.identity) : checkHeldKey(vm, target.console, await context.keys.own(record.id, vm)).privateKey;
  const viewers = new Set<Socket>();
  const server = createServer((socket) => void serveViewer(socket, { record, api, target, privateKey, vm }, viewers));
  const port = await listen(server, options.port);
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      for (const socket of viewers) socket.destroy();
      server.close(() => resolve());
    });
  const viewer = options.proxyOnly ? undefined : viewerCommand(port, options.viewer);
  if (options.proxyOnly) process.stdout.write(`${JSON.stringify({ port })}\n`);
  else say(`The screen of ${vm} is at 127.0.0.1:${port} (VNC display :${port - 5900}). Ctrl-C to stop.`);
  if (!options.proxyOnly && !viewer) say('No VNC viewer found (looked for vncviewer, gvncviewer, remmina, vinagre, krdc): point one at that address, or use --viewer CMD or --browser.');
  const interrupted = new Promise<number>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve(EXIT.ok));
  });
  const viewerExit = viewer
    ? new Promise<number>((resolve) => {
        const child = spawn(viewer.command, viewer.args, { stdio: 'ignore' });
        child.once('error', (error) => {
          say(`Cannot start the viewer ${viewer.command} (${error.message}); the port stays up: Ctrl-C to stop.`);
        });
        child.once('exit', () => resolve(EXIT.ok));
      })
    : new Promise<number>(() => undefined);
  const code = await Promise.race([interrupted, viewerExit]);
  await stop();
  return code;
}

function readIdentity(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`Cannot read the key file ${file} (${(error as NodeJS.ErrnoException).code}).`);
  }
}

/** One viewer connection: its own SSH connection and `vnc:5900` channel; when it ends early, why. */
async function serveViewer(socket: Socket, session: { record: RelayRecord; api: RelayApi; target: ConsoleTarget; privateKey: string; vm: string }, viewers: Set<Socket>): Promise<void> {
  viewers.add(socket);
  socket.once('close', () => viewers.delete(socket));
  socket.on('error', () => undefined);
  let connection: ConsoleConnection;
  try {
    connection = await ConsoleConnection.open({ host: session.target.host, port: session.target.port, accessId: session.target.user, privateKey: session.privateKey, hostKeyFingerprint: session.record.hostKeyFingerprint, kind: 'vnc' });
  } catch (error) {
    say(`lifeline: a viewer connected, but the screen of ${session.vm} cannot be opened: ${await explain(session, (error as Error).message)}`);
    socket.destroy();
    return;
  }
  const channel = connection.channel!;
  socket.pipe(channel).pipe(socket);
  socket.once('close', () => connection.close());
  connection.once('closed', async () => {
    if (!socket.destroyed) {
      say(`lifeline: the screen stream of ${session.vm} ended: ${await explain(session, 'the relay closed it (another viewer may have opened this VM\'s screen)')}`);
      socket.destroy();
    }
  });
}

/** The console's state says more than a closed channel: disabled, expired, deleted, re-keyed. */
async function explain(session: { api: RelayApi; target: ConsoleTarget; vm: string }, fallback: string): Promise<string> {
  try {
    const now = await session.api.console(session.vm);
    const refusal = consoleRefusal(session.vm, now);
    if (refusal) return refusal;
    if (now && now.keyFingerprint !== session.target.console.keyFingerprint) return `the console's key was replaced (now ${now.keyFingerprint}).`;
  } catch {
    // The relay cannot say: keep the first reason.
  }
  return fallback;
}
