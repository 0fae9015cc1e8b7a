import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../logger.js';
import { QmpMonitor } from './qmp-monitor.js';

/** A QMP peer like QEMU's: a greeting, then answers; `quit` and `crash` close without answering (QEMU may exit before flushing). */
async function fakeQemu(path: string): Promise<{ close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.write('{"QMP": {"version": {}, "capabilities": []}}\n');
    socket.on('data', (data) => {
      for (const line of data.toString().split('\n').filter(Boolean)) {
        const { execute, id } = JSON.parse(line) as { execute: string; id?: string };
        if (execute === 'quit' || execute === 'crash') return void socket.destroy();
        if (execute === 'query-status') socket.write(`${JSON.stringify({ return: { status: 'running' }, id })}\n`);
        else if (id) socket.write(`${JSON.stringify({ return: {}, id })}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }) };
}

test('QMP quit: the connection closing before QEMU answers is the answer; any other command fails then', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-qmp-'));
  const path = join(dir, 'qmp.sock');
  const qemu = await fakeQemu(path);
  const monitor = new QmpMonitor({ kind: 'unix', path }, createLogger('silent'));
  try {
    monitor.start();
    for (let i = 0; i < 100 && monitor.state !== 'Running'; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(monitor.state, 'Running');
    await monitor.execute('system_reset');
    await assert.rejects(monitor.execute('crash'), /QMP connection closed/);
    for (let i = 0; i < 200 && monitor.state !== 'Running'; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await monitor.execute('quit', undefined, 5000, true), undefined);
  } finally {
    monitor.close();
    await qemu.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
