import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { STREAM_WINDOW_BYTES, type StreamMessage } from '../../preload/contract.js';
import { ConsoleConnection } from '../../main/services/console-connection.js';
import { generateKeyPair } from '../../main/services/ssh-keys.js';
import { bridgeStream, type MessageEndpoint } from '../../main/services/stream-bridge.js';
import { FLOOD_TRIGGER, startFakeConsole, type FakeConsole } from '../bench/fake-console.js';
import { runCleanups } from '../helpers/cleanup.js';
import { ephemeralConfig, type RelayProcess, startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

const FLOOD_BYTES = 8 * 1024 * 1024;

/** Main's end over a worker_threads port: the same shape as Electron's MessagePortMain. */
function endpoint(port: MessagePort): MessageEndpoint {
  return { send: (message) => port.postMessage(message), onMessage: (listener) => void port.on('message', listener), onClose: (listener) => void port.on('close', listener), close: () => port.close() };
}

/** The renderer's end: records what arrives, acknowledges only when told to. */
function renderer(port: MessagePort): { received: () => number; text: () => string; closed: () => string | undefined; ack: (bytes: number) => void; autoAck: (on: boolean) => void; send: (text: string | Uint8Array) => void; close: () => void } {
  let received = 0;
  let text = '';
  let closed: string | undefined;
  let auto = false;
  port.on('message', (message: StreamMessage) => {
    if (message.type === 'data') {
      received += message.data.byteLength;
      if (text.length < 4096) text += Buffer.from(message.data).toString('latin1');
      if (auto) port.postMessage({ type: 'ack', bytes: message.data.byteLength });
    } else if (message.type === 'close') closed = message.reason;
  });
  return {
    received: () => received,
    text: () => text,
    closed: () => closed,
    ack: (bytes) => port.postMessage({ type: 'ack', bytes }),
    autoAck: (on) => (auto = on),
    send: (data) => port.postMessage({ type: 'data', data: typeof data === 'string' ? new TextEncoder().encode(data) : data }),
    close: () => {
      port.postMessage({ type: 'close', reason: 'closed' });
      port.close();
    },
  };
}

/** The stream bridge (main's side of a tab) over a real ssh2 console connection to a real relay. */
describe('the stream bridge between a console connection and a renderer port', () => {
  const tmp = tempDir('bridge');
  let console: FakeConsole;
  let relay: RelayProcess;
  let connection: ConsoleConnection;

  before(async () => {
    console = await startFakeConsole(join(tmp.path, 'serial.sock'), FLOOD_BYTES);
    const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay', { virtualMachines: [{ name: 'vm1', serial: console.path }] });
    relay = await startRelay(configPath, dataDir);
    const key = generateKeyPair();
    const created = (await relay.api('PUT', '/v1/virtualMachines/vm1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } })).body;
    const info = (await relay.api('GET', '/v1/relay')).body;
    connection = await ConsoleConnection.open({ host: '127.0.0.1', port: relay.sshPort, accessId: created.virtualMachineAccessId, privateKey: key.privateKey, hostKeyFingerprint: info.sshHostKeys[0].fingerprint, kind: 'serial' });
  });

  after(() => runCleanups([() => connection?.close(), () => relay?.stop(), () => console?.close(), tmp.dispose]));

  test('the first bytes arrive with no ack sent; a slow renderer pauses the channel; acks resume it; a renderer close detaches', async () => {
    const { port1, port2 } = new MessageChannel();
    const page = renderer(port2);
    bridgeStream(connection.channel!, endpoint(port1));
    page.send('hello-bridge');
    await waitUntil(() => page.text().includes('hello-bridge'), 5000, 'the echo without any ack');

    // Flood, and do not acknowledge: main stops reading the channel at the window.
    page.send(new Uint8Array([FLOOD_TRIGGER]));
    await waitUntil(() => page.received() > STREAM_WINDOW_BYTES, 10_000, 'a window of output');
    await sleep(1000);
    const atPause = page.received();
    await sleep(1000);
    assert.equal(page.received(), atPause, 'nothing more arrives while unacknowledged');
    assert.ok(atPause <= STREAM_WINDOW_BYTES + 256 * 1024, `at most one window (and a chunk) in flight: ${atPause}`);
    assert.equal(connection.channel!.isPaused(), true, 'the SSH channel is paused');

    // Acknowledging lets the rest through.
    page.autoAck(true);
    page.ack(atPause);
    await waitUntil(() => page.received() >= FLOOD_BYTES, 30_000, 'the whole flood after acks');

    // The renderer closes its side (a tab reloaded): main detaches and leaves the channel paused for the next attach.
    page.close();
    await waitUntil(() => connection.channel!.listenerCount('data') === 1, 5000, 'the bridge to detach');
    assert.equal(connection.channel!.isPaused(), true);
    const { port1: again1, port2: again2 } = new MessageChannel();
    const next = renderer(again2);
    bridgeStream(connection.channel!, endpoint(again1));
    next.send('second-attach');
    await waitUntil(() => next.text().includes('second-attach'), 5000, 'output on a new attach');

    // The console closing reaches the renderer as a close message.
    connection.close();
    await waitUntil(() => next.closed(), 5000, 'a close message');
    again2.close();
  });

  test('a second error on the ssh2 connection is handled, not an uncaught exception in main', async () => {
    const key = generateKeyPair();
    const created = (await relay.api('PUT', '/v1/virtualMachines/vm1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } })).body;
    const info = (await relay.api('GET', '/v1/relay')).body;
    const second = await ConsoleConnection.open({ host: '127.0.0.1', port: relay.sshPort, accessId: created.virtualMachineAccessId, privateKey: key.privateKey, hostKeyFingerprint: info.sshHostKeys[0].fingerprint, kind: 'serial' });
    const reasons: string[] = [];
    second.on('closed', (reason: string) => reasons.push(reason));
    // What ssh2 does when a connection fails twice (a socket error, then a protocol error on the rest).
    const client = (second as unknown as { client: { emit(event: string, error: Error): boolean } }).client;
    client.emit('error', new Error('read ECONNRESET'));
    client.emit('error', new Error('bad packet length'));
    assert.deepEqual(reasons, ['connection error: read ECONNRESET']);
    assert.equal(second.closed, true);
  });
});
