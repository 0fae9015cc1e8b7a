import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { OPENSSH_BATCH_OPTIONS } from '../helpers/openssh.js';
import { FLOOD_TRIGGER } from './fake-console.js';



/**
 * ms from spawning OpenSSH `ssh -T` to the first console byte (the echo of a byte sent at once).
 * `bindAddress` is the client's source address (`ssh -b`); past `timeoutMs` the client is killed and it fails.
 */
export function opensshSetup(port: number, user: string, key: string, command?: string, options: { bindAddress?: string; timeoutMs?: number } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const bind = options.bindAddress ? ['-b', options.bindAddress] : [];
    const child = spawn('ssh', [...OPENSSH_BATCH_OPTIONS, ...bind, '-i', key, '-T', '-p', String(port), `${user}@127.0.0.1`, ...(command ? [command] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.stdin.on('error', () => undefined);
    child.stdin.write('x');
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.once('data', () => {
      clearTimeout(timer);
      resolve(Number(process.hrtime.bigint() - started) / 1e6);
      child.kill('SIGKILL');
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`ssh exited ${code ?? signal}: ${err}`));
    });
  });
}

/**
 * Like a user retrying by hand: `ssh` again 200 ms after each failed attempt (a connection dropped
 * by the server) until the first console byte arrives or `deadlineMs` pass. ms from the first
 * attempt, and how many attempts it took; `ms` undefined when the deadline passed.
 */
export async function opensshSetupRetrying(port: number, user: string, key: string, command: string | undefined, bindAddress: string, deadlineMs: number): Promise<{ ms?: number; attempts: number }> {
  const started = Date.now();
  let attempts = 0;
  while (Date.now() - started < deadlineMs) {
    attempts++;
    try {
      await opensshSetup(port, user, key, command, { bindAddress, timeoutMs: Math.max(100, deadlineMs - (Date.now() - started)) });
      return { ms: Date.now() - started, attempts };
    } catch {
      await sleep(200);
    }
  }
  return { attempts };
}

/** The cipher OpenSSH negotiates with a server, from `ssh -v`. */
export function negotiatedCipher(port: number, user: string, key: string, command?: string): Promise<string> {
  return new Promise((resolve) => {
    const verbose = OPENSSH_BATCH_OPTIONS.map((o) => (o === 'LogLevel=ERROR' ? 'LogLevel=VERBOSE' : o));
    const child = spawn('ssh', [...verbose, '-v', '-i', key, '-T', '-p', String(port), `${user}@127.0.0.1`, ...(command ? [command] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const match = /kex: server->client cipher: (\S+)/.exec(err);
      if (match) {
        resolve(match[1]!);
        child.kill('SIGKILL');
      }
    });
    child.once('exit', () => resolve('unknown'));
  });
}

/**
 * Seconds for OpenSSH `ssh -T` to receive `bytes` of console flood, and the CPU seconds `cpu()`
 * went up by meanwhile (sampled before the client is killed, so a per-connection server process still counts).
 */
export function opensshThroughput(port: number, user: string, key: string, bytes: number, command?: string, cpu: () => number = () => 0): Promise<{ seconds: number; cpuSeconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', [...OPENSSH_BATCH_OPTIONS, '-i', key, '-T', '-p', String(port), `${user}@127.0.0.1`, ...(command ? [command] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
    let started = 0n;
    let cpuBefore = 0;
    let received = 0;
    let primed = false;
    // Prime with an echo first so setup time is not counted, then trigger the flood.
    child.stdin.write('x');
    child.stdout.on('data', (d: Buffer) => {
      if (!primed) {
        primed = true;
        received = d.length - 1;
        cpuBefore = cpu();
        started = process.hrtime.bigint();
        child.stdin.write(Buffer.from([FLOOD_TRIGGER]));
        return;
      }
      received += d.length;
      if (received >= bytes) {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        resolve({ seconds, cpuSeconds: cpu() - cpuBefore });
        child.kill('SIGKILL');
      }
    });
    child.once('exit', (code) => (received < bytes ? reject(new Error(`ssh exited ${code} after ${received} bytes`)) : undefined));
  });
}

export interface ByteClient {
  stream: Duplex;
  close(): void;
}

export function directClient(path: string): Promise<ByteClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ path });
    socket.setNoDelay(true);
    socket.once('connect', () => resolve({ stream: socket, close: () => socket.destroy() }));
    socket.once('error', reject);
  });
}

/** An ssh2 client session: the relay's shell channel, or sshd's exec of the socket path. */
export function ssh2Client(port: number, user: string, key: string, command?: string): Promise<ByteClient & { setupMs: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const client = new ssh2.Client();
    client.once('error', reject);
    client.once('ready', () => {
      const done = (error: Error | undefined, channel: ssh2.ClientChannel): void => {
        if (error) return reject(error);
        resolve({ stream: channel, setupMs: Number(process.hrtime.bigint() - started) / 1e6, close: () => client.end() });
      };
      if (command) client.exec(command, done);
      else client.shell(false, done);
    });
    client.connect({ host: '127.0.0.1', port, username: user, privateKey: readFileSync(key), readyTimeout: 60_000, keepaliveInterval: 0 });
  });
}

/** Round-trip times (ms) of `count` sequential 1-byte echoes. */
export async function roundTrips(stream: Duplex, count: number, settleMs = 200): Promise<number[]> {
  const times: number[] = [];
  // Drain anything already buffered (a replay, say).
  stream.resume();
  await new Promise((r) => setTimeout(r, settleMs));
  stream.pause();
  stream.removeAllListeners('data');
  for (let i = 0; i < count; i++) {
    const started = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      stream.once('data', () => resolve());
      stream.resume();
      stream.write('z');
    });
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return times;
}

/** Seconds to receive `bytes` of flood on an open stream; fails if the stream closes first. */
export function floodSeconds(stream: Duplex, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let received = 0;
    stream.removeAllListeners('data');
    const started = process.hrtime.bigint();
    const onClose = (): void => reject(new Error(`the stream closed after ${received} of ${bytes} bytes`));
    const onData = (d: Buffer): void => {
      received += d.length;
      if (received >= bytes) {
        stream.removeListener('data', onData);
        stream.removeListener('close', onClose);
        resolve(Number(process.hrtime.bigint() - started) / 1e9);
      }
    };
    stream.once('close', onClose);
    stream.on('data', onData);
    stream.resume();
    stream.write(Buffer.from([FLOOD_TRIGGER]));
  });
}

/** Resolves once something listens on 127.0.0.1:`port` (10 s at most). */
export async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on port ${port}`);
}
