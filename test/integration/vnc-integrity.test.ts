import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { runCleanups } from '../helpers/cleanup.js';
import { generateKey, spawnLocalForward, type KeyPair } from '../helpers/openssh.js';
import { ephemeralConfig, type RelayProcess, startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The relay reads VNC data into pooled buffers and reuses each one once it has been written on.
 * These tests move megabytes of a pattern that never lines up with a 64 KiB buffer through both
 * VNC paths, with a reader that keeps stopping, and check every byte, both ways: a buffer reused
 * too early, a chunk sent twice or out of order would show as a mismatch at a known offset.
 * The VNC server is a pattern generator in the place of QEMU (a guest's screen cannot be made to
 * carry a checkable byte sequence); the relay, the OpenSSH client and the ws client are real.
 */
const PERIOD = 1_000_003; // prime: no read or buffer size divides it
const PATTERN = Buffer.alloc(PERIOD);
for (let i = 0; i < PERIOD; i++) PATTERN[i] = (Math.imul(i, 2654435761) >>> 24) & 0xff;
const MB = 1024 * 1024;
const DOWN = 24 * MB;
const UP = 8 * MB;

/** Compares `chunk` with the pattern from `offset`; returns the first bad offset or -1. */
function firstMismatch(chunk: Buffer, offset: number): number {
  for (let i = 0; i < chunk.length; i++) if (chunk[i] !== PATTERN[(offset + i) % PERIOD]) return offset + i;
  return -1;
}

function patternSlice(offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let done = 0; done < length; ) {
    const at = (offset + done) % PERIOD;
    const take = Math.min(length - done, PERIOD - at);
    PATTERN.copy(out, done, at, at + take);
    done += take;
  }
  return out;
}

/** Every connection gets DOWN bytes of pattern (odd-sized writes, with backpressure) and has its input checked against the pattern. */
function patternVncServer(path: string): Promise<{ inputs: Array<{ received: number; mismatch: number }>; close: () => void }> {
  const inputs: Array<{ received: number; mismatch: number }> = [];
  const peers = new Set<Socket>();
  const server = createServer((socket) => {
    peers.add(socket);
    socket.on('error', () => undefined);
    const input = { received: 0, mismatch: -1 };
    inputs.push(input);
    socket.on('data', (data: Buffer) => {
      if (input.mismatch < 0) input.mismatch = firstMismatch(data, input.received);
      input.received += data.length;
    });
    let sent = 0;
    const pump = (): void => {
      while (sent < DOWN && !socket.destroyed) {
        const size = Math.min(DOWN - sent, 40_000 + ((sent / 7) % 50_000));
        const piece = patternSlice(sent, Math.floor(size));
        sent += piece.length;
        if (!socket.write(piece)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
  return new Promise((resolve) =>
    server.listen(path, () =>
      resolve({
        inputs,
        close: () => {
          for (const peer of peers) peer.destroy();
          server.close();
        },
      }),
    ),
  );
}

/** Reads `bytes` from a stream-like source, pausing for 30 ms every 3 MB, checking each byte. */
async function readChecked(source: { on(event: 'data', listener: (chunk: Buffer) => void): unknown; pause(): void; resume(): void }, bytes: number): Promise<{ received: number; mismatch: number }> {
  let received = 0;
  let mismatch = -1;
  let nextPause = 3 * MB;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received} of ${bytes} bytes arrived in 60 s`)), 60_000);
    source.on('data', (chunk: Buffer) => {
      if (mismatch < 0) mismatch = firstMismatch(chunk, received);
      received += chunk.length;
      if (received >= bytes) {
        clearTimeout(timer);
        resolve();
      } else if (received >= nextPause) {
        nextPause += 3 * MB;
        source.pause();
        setTimeout(() => source.resume(), 30);
      }
    });
  });
  return { received, mismatch };
}

describe('VNC byte integrity through pooled read buffers', () => {
  const tmp = tempDir('vnc-integrity');
  const cleanups: Array<() => unknown> = [];
  let relay: RelayProcess;
  let key: KeyPair;
  let server: Awaited<ReturnType<typeof patternVncServer>>;
  let accessId: string;

  before(async () => {
    server = await patternVncServer(join(tmp.path, 'vnc.sock'));
    cleanups.push(server.close);
    // A serial socket nobody answers on: the console resource is about the VM, and SSH needs it.
    const silent = createServer(() => undefined).listen(join(tmp.path, 'serial.sock'));
    cleanups.push(() => silent.close());
    key = generateKey(tmp.path, 'key');
    const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay', { virtualMachines: [{ name: 'pattern', serial: join(tmp.path, 'serial.sock'), vnc: join(tmp.path, 'vnc.sock') }] });
    relay = await startRelay(configPath, dataDir);
    cleanups.push(() => relay.stop());
    const created = await relay.api('PUT', '/v1/virtualMachines/pattern/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.ok(created.status === 200 || created.status === 201, JSON.stringify(created.body));
    accessId = created.body.virtualMachineAccessId as string;
  });
  after(async () => {
    await runCleanups(cleanups.reverse());
    tmp.dispose();
  });

  test('WebSocket: 24 MB down to a stop-and-go reader and 8 MB up arrive byte for byte', async () => {
    const { url } = (await relay.api('POST', '/v1/virtualMachines/pattern/vncTokens')).body as { url: string };
    const before = server.inputs.length;
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['binary']);
    cleanups.push(() => ws.terminate());
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const source = {
      on: (_event: 'data', listener: (chunk: Buffer) => void) => ws.on('message', (data: Buffer) => listener(data)),
      pause: () => ws.pause(),
      resume: () => ws.resume(),
    };
    const reading = readChecked(source, DOWN);
    for (let sent = 0; sent < UP; sent += 100_000) ws.send(patternSlice(sent, Math.min(100_000, UP - sent)));
    const down = await reading;
    assert.equal(down.mismatch, -1, `server → client byte ${down.mismatch} differs from what the VM sent`);
    assert.equal(down.received, DOWN);
    const input = server.inputs[before]!;
    await waitUntil(() => input.received >= UP, 20_000, 'the client input to reach the VM');
    assert.equal(input.mismatch, -1, `client → server byte ${input.mismatch} differs from what the client sent`);
    assert.equal(input.received, UP);
    ws.terminate();
  });

  test('ssh -L vnc:5900: 24 MB down to a stop-and-go reader and 8 MB up arrive byte for byte', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as { port: number };
        probe.close(() => resolve(free));
      });
    });
    const ssh = spawnLocalForward({ port: relay.sshPort, user: accessId, key: key.privateKeyPath, localPort: port, destination: 'vnc:5900' });
    cleanups.push(() => ssh.kill('SIGKILL'));
    // Wait for the forward without opening it (a probe connection would be a VNC session of its own).
    await waitUntil(() => readFileSync('/proc/net/tcp', 'utf8').includes(`:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`), 10_000, 'ssh to listen');
    const before = server.inputs.length;
    const socket = connect({ port, host: '127.0.0.1' });
    cleanups.push(() => socket.destroy());
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const reading = readChecked(socket, DOWN);
    for (let sent = 0; sent < UP; sent += 100_000) socket.write(patternSlice(sent, Math.min(100_000, UP - sent)));
    const down = await reading;
    assert.equal(down.mismatch, -1, `server → client byte ${down.mismatch} differs from what the VM sent`);
    assert.equal(down.received, DOWN);
    await waitUntil(() => server.inputs.length > before && server.inputs[before]!.received >= UP, 20_000, 'the client input to reach the VM');
    const input = server.inputs[before]!;
    assert.equal(input.mismatch, -1, `client → server byte ${input.mismatch} differs from what the client sent`);
    assert.equal(input.received, UP);
    socket.destroy();
    ssh.kill('SIGTERM');
    await sleep(100);
  });
});
