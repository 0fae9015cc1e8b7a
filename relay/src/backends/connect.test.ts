import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectTo } from './connect.js';

// A listener as QEMU's VNC server makes it (backlog 1) that is slow to accept, as a busy TCG QEMU is.
const SLOW_LISTENER = `
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
time.sleep(0.4)
peers = []
while True:
    peers.append(s.accept()[0])
`;

test('connects to a unix socket whose listen queue is full (EAGAIN) once it is accepted, instead of failing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-connect-'));
  const path = join(dir, 'vnc.sock');
  const listener = spawn('python3', ['-c', SLOW_LISTENER, path], { stdio: 'ignore' });
  const sockets: Socket[] = [];
  try {
    while (!existsSync(path)) await new Promise((resolve) => setTimeout(resolve, 10));
    // Four at once: a backlog of 1 holds two; the others are refused with EAGAIN until the listener accepts.
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => connectTo({ kind: 'unix', path }, 3000)));
    for (const result of results) if (result.status === 'fulfilled') sockets.push(result.value);
    assert.deepEqual(
      results.map((result) => (result.status === 'fulfilled' ? 'connected' : (result.reason as NodeJS.ErrnoException).code)),
      ['connected', 'connected', 'connected', 'connected'],
    );
  } finally {
    for (const socket of sockets) socket.destroy();
    listener.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a unix socket nobody listens on still fails at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-connect-'));
  try {
    const started = Date.now();
    await assert.rejects(connectTo({ kind: 'unix', path: join(dir, 'none.sock') }, 3000), { code: 'ENOENT' });
    assert.ok(Date.now() - started < 500);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
