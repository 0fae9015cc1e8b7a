import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../logger.js';
import { BREAK_SETTLE_MS, SerialAttachment } from './serial-attachment.js';

const IAC = 255;
const BREAK = 243;

/** A telnet-mode chardev stand-in on a real unix socket: records each byte with when it arrived. */
async function withChardev(run: (attachment: SerialAttachment, received: Array<{ byte: number; at: number }>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'll-serial-'));
  const path = join(dir, 'serial.sock');
  const received: Array<{ byte: number; at: number }> = [];
  let peer: Socket | undefined;
  const server = createServer((socket) => {
    peer = socket;
    socket.on('data', (chunk: Buffer) => {
      const at = performance.now();
      for (const byte of chunk) received.push({ byte, at });
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const attachment = new SerialAttachment('vm-1', { kind: 'unix', path }, 1024, createLogger('silent'), 'telnet');
  try {
    attachment.start();
    while (!attachment.connected) await new Promise((resolve) => setTimeout(resolve, 5));
    await run(attachment, received);
  } finally {
    attachment.close();
    peer?.destroy();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function until(check: () => boolean): Promise<void> {
  const end = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('a break right behind input waits until the input has settled, and input after it follows it in order', async () => {
  await withChardev(async (attachment, received) => {
    // What OpenSSH sends for "Enter ~B h" typed in one go: data, a break request, data.
    assert.equal(attachment.write(Buffer.from('\r')), true);
    assert.equal(attachment.sendBreak(), true);
    assert.equal(attachment.write(Buffer.from('h')), true);
    await until(() => received.length === 4);
    assert.deepEqual(received.map((r) => r.byte), [13, IAC, BREAK, 104]);
    const gap = received[1]!.at - received[0]!.at;
    assert.ok(gap >= BREAK_SETTLE_MS - 5, `the break came ${gap.toFixed(1)} ms after the input before it`);
  });
});

test('a break with no recent input goes out at once; 0xFF input stays escaped around breaks', async () => {
  await withChardev(async (attachment, received) => {
    await new Promise((resolve) => setTimeout(resolve, BREAK_SETTLE_MS));
    const asked = performance.now();
    attachment.sendBreak();
    await until(() => received.length === 2);
    assert.ok(received[0]!.at - asked < BREAK_SETTLE_MS / 2, 'not held without a reason');
    attachment.write(Buffer.from([0x41, 0xff]));
    attachment.sendBreak();
    attachment.sendBreak();
    attachment.write(Buffer.from([0xff]));
    await until(() => received.length === 11);
    assert.deepEqual(received.map((r) => r.byte), [IAC, BREAK, 0x41, IAC, IAC, IAC, BREAK, IAC, BREAK, IAC, IAC]);
  });
});

test('held input is its session\'s own: dropped when that session detaches or another attaches', async () => {
  await withChardev(async (attachment, received) => {
    const sink = { write: () => true, onceDrain: () => undefined, cancelDrain: () => undefined };
    const detach = attachment.attach(sink);
    attachment.write(Buffer.from('a'));
    attachment.sendBreak();
    attachment.write(Buffer.from('secret'));
    detach(); // closed (re-keyed, displaced): what it typed behind the break must not reach the VM
    attachment.attach(sink);
    attachment.write(Buffer.from('b'));
    attachment.sendBreak();
    attachment.write(Buffer.from('c'));
    attachment.attach(sink); // a second session displaces the first
    await new Promise((resolve) => setTimeout(resolve, BREAK_SETTLE_MS * 2));
    assert.deepEqual(Buffer.from(received.map((r) => r.byte)).toString('latin1'), 'ab');
  });
});

test('held input is dropped, not replayed, when the VM goes away', async () => {
  await withChardev(async (attachment, received) => {
    attachment.write(Buffer.from('a'));
    attachment.sendBreak();
    attachment.write(Buffer.from('b'));
    attachment.close();
    await new Promise((resolve) => setTimeout(resolve, BREAK_SETTLE_MS * 2));
    assert.deepEqual(received.map((r) => r.byte), [0x61]);
  });
});
