import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type ssh2 from 'ssh2';
import { generateKey } from '../helpers/openssh.js';
import { openSsh2Shell } from '../helpers/ssh2-shell.js';
import { rssKiB } from '../helpers/proc.js';
import { ephemeralConfig, startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * A console that floods faster than any guest under TCG can, so the relay's byte path is
 * what is measured: a unix socket server in the place of QEMU's chardev, writing as long as
 * its socket accepts data.
 */
function floodingChardev(path: string): Promise<{ written: () => number; close: () => void }> {
  let written = 0;
  const peers = new Set<Socket>();
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const server = createServer((socket) => {
    peers.add(socket);
    socket.on('error', () => undefined);
    const pump = (): void => {
      while (!socket.destroyed) {
        written += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
  return new Promise((resolve) =>
    server.listen(path, () =>
      resolve({
        written: () => written,
        close: () => {
          for (const peer of peers) peer.destroy();
          server.close();
        },
      }),
    ),
  );
}

describe('backpressure on the serial byte path', () => {
  const tmp = tempDir('backpressure');
  after(() => tmp.dispose());

  test('a client that stops reading stops the relay reading the console; memory stays bounded', async (t) => {
    const socketPath = join(tmp.path, 'flood.sock');
    const chardev = await floodingChardev(socketPath);
    const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay', { virtualMachines: [{ name: 'flood', serial: socketPath }] });
    const relay = await startRelay(configPath, dataDir);
    let client: ssh2.Client | undefined;
    try {
      const key = generateKey(tmp.path, 'key');
      const created = await relay.api('PUT', '/v1/virtualMachines/flood/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
      const opened = await openSsh2Shell({ port: relay.sshPort, user: created.body.virtualMachineAccessId, privateKey: readFileSync(key.privateKeyPath) });
      client = opened.client;
      const stream = opened.shell;
      let received = 0;
      stream.on('data', (data: Buffer) => (received += data.length));
      await waitUntil(() => received > 4 * 1024 * 1024, 20_000, 'the flood to reach the client');
      stream.pause();

      // Let the windows and socket buffers fill, then watch: the chardev must be blocked.
      await sleep(2000);
      const writtenAtPause = chardev.written();
      const rssAtPause = rssKiB(relay.child.pid!);
      await sleep(3000);
      const grewBy = chardev.written() - writtenAtPause;
      const rssAfter = rssKiB(relay.child.pid!);
      assert.ok(grewBy <= 1024 * 1024, `the relay kept reading ${grewBy} bytes from the console while its client did not read`);
      assert.ok(rssAfter - rssAtPause < 16 * 1024, `relay RSS grew by ${rssAfter - rssAtPause} KiB while paused`);
      t.diagnostic(`paused reader: the console wrote ${grewBy} more bytes in 3 s; relay RSS ${rssAtPause} -> ${rssAfter} KiB`);

      // Reading again lets the flood through again: the path was paused, not broken.
      const receivedBefore = received;
      stream.resume();
      await waitUntil(() => received - receivedBefore > 8 * 1024 * 1024, 20_000, 'the flood to resume');
      assert.ok(chardev.written() > writtenAtPause + grewBy);
    } finally {
      client?.end();
      await relay.stop();
      chardev.close();
    }
  });

  test('input waiting for a VM that stopped reading flows again once the VM socket drops and comes back', async () => {
    // A chardev that takes no input until its connection is dropped; the next connection echoes.
    const socketPath = join(tmp.path, 'stuck.sock');
    const peers = new Set<Socket>();
    let connections = 0;
    const chardev = createServer((socket) => {
      peers.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => peers.delete(socket));
      if (++connections === 1) socket.pause();
      else socket.on('data', (data: Buffer) => socket.write(data));
    });
    await new Promise<void>((resolve) => chardev.listen(socketPath, resolve));
    const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay-stuck', { virtualMachines: [{ name: 'stuck', serial: socketPath }] });
    const relay = await startRelay(configPath, dataDir);
    let client: ssh2.Client | undefined;
    try {
      const key = generateKey(tmp.path, 'key-stuck');
      const created = await relay.api('PUT', '/v1/virtualMachines/stuck/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
      const opened = await openSsh2Shell({ port: relay.sshPort, user: created.body.virtualMachineAccessId, privateKey: readFileSync(key.privateKeyPath) });
      client = opened.client;
      const stream = opened.shell;
      let output = '';
      stream.on('data', (data: Buffer) => (output += data.toString('latin1')));
      // More input than the socket buffers hold: the relay stops reading the client and waits for drain.
      const filler = Buffer.alloc(64 * 1024, 'i');
      for (let i = 0; i < 64; i++) stream.write(filler);
      await sleep(1500);
      // The VM goes away (and comes back at once): the input must not wait for a drain that never comes.
      for (const peer of peers) peer.destroy();
      await waitUntil(() => connections >= 2, 10_000, 'the relay to reconnect to the chardev');
      // The chardev counts the connection when it accepts it, a moment before the relay sees it connected; input in
      // that moment is dropped like any input while the VM is away (documented), so the marker is typed until it echoes.
      let typedAt = 0;
      await waitUntil(() => {
        if (output.includes('marker-after-reconnect')) return true;
        if (Date.now() - typedAt > 1000) {
          stream.write('\rmarker-after-reconnect\r');
          typedAt = Date.now();
        }
        return false;
      }, 20_000, 'input to flow to the VM again');
    } finally {
      client?.end();
      await relay.stop();
      for (const peer of peers) peer.destroy();
      chardev.close();
    }
  });
});
