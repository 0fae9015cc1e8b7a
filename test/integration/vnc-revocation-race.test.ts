import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { VirtualMachineRegistry } from '../../relay/src/backends/virtual-machines.js';
import { createLogger } from '../../relay/src/logger.js';
import { ConsoleService } from '../../relay/src/sessions/console-service.js';
import { SessionSupervisor } from '../../relay/src/sessions/session-supervisor.js';
import { SqliteStore } from '../../relay/src/store/sqlite-store.js';
import { VncTokenService } from '../../relay/src/vnc/vnc-tokens.js';
import { VncWebServer } from '../../relay/src/vnc/vnc-web-server.js';
import { startFakeConsole, type FakeConsole } from '../bench/fake-console.js';
import { runCleanups } from '../helpers/cleanup.js';
import { generateKey, type KeyPair } from '../helpers/openssh.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';
import { FailureBackoff, StartupLimiter } from '../../relay/src/core/preauth-limits.js';

/**
 * The WebSocket VNC path's admission race, in process so the wait can be held open on cue: the
 * real web server, supervisor, console service, token service and SQLite store, and a VM whose
 * screen (a real socket) opens only when the test lets it, as a slow or busy QEMU would.
 */
describe('a console change while a VNC WebSocket waits for the VM\'s screen', () => {
  const tmp = tempDir('vnc-race');
  const log = createLogger('silent');
  let store: SqliteStore;
  let screen: FakeConsole;
  let supervisor: SessionSupervisor;
  let consoles: ConsoleService;
  let tokens: VncTokenService;
  let web: VncWebServer;
  let listener: Server;
  let port: number;
  let keyA: KeyPair;
  let keyB: KeyPair;
  const opening: Array<() => void> = [];
  let opened = 0;

  before(async () => {
    keyA = generateKey(tmp.path, 'a');
    keyB = generateKey(tmp.path, 'b');
    screen = await startFakeConsole(join(tmp.path, 'vnc.sock'), 0, true);
    store = new SqliteStore(join(tmp.path, 'store.db'));
    const registry = new VirtualMachineRegistry([{ name: 'vm1', vnc: { kind: 'unix', path: screen.path } }], 0, log);
    const vm = registry.get('vm1')!;
    const openVnc = vm.openVnc.bind(vm);
    vm.openVnc = async () => {
      opened++;
      await new Promise<void>((resolve) => opening.push(resolve));
      return openVnc();
    };
    supervisor = new SessionSupervisor(store, log);
    consoles = new ConsoleService(store, { defaultTtlMs: 3_600_000, maxTtlMs: 86_400_000 }, (name) => name === 'vm1', (name) => supervisor.revalidate(name));
    tokens = new VncTokenService(60_000);
    web = new VncWebServer({ tokens, virtualMachines: registry, supervisor, consoles: store, pingIntervalMs: 30_000, log, loginGraceTimeMs: 20_000, startups: new StartupLimiter({ start: 1000, rate: 100, full: 1000 }, 1000), failures: new FailureBackoff() });
    listener = createServer((socket) => web.handle(socket, 'default'));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    port = (listener.address() as { port: number }).port;
  });

  after(() => runCleanups([() => supervisor?.closeAll({ code: 'shutdown', message: 'test over' }), () => web?.close(), () => listener?.close(), () => screen?.close(), () => store?.close(), tmp.dispose]));

  /** Mints a token, starts the WebSocket, and resolves once the relay is waiting for the VM's screen. */
  async function connectAndHold(): Promise<{ result: Promise<{ status: number; reason: string }>; release: () => void }> {
    const record = await consoles.get('vm1');
    const { token } = tokens.mint({ virtualMachine: 'vm1', accessId: record.accessId, keyFingerprint: record.keyFingerprint }, 'default');
    const before = opened;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/?token=${token}`, ['binary']);
    const result = new Promise<{ status: number; reason: string }>((resolve) => {
      ws.on('open', () => {
        resolve({ status: 101, reason: '' });
        ws.close();
      });
      ws.on('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, reason: body.trim() }));
      });
      ws.on('error', () => undefined);
    });
    await waitUntil(() => opened > before, 5000, 'the relay to start opening the VM screen');
    return { result, release: () => opening.shift()?.() };
  }

  test('with no change in between, the client is admitted (the control case)', async () => {
    await consoles.put('vm1', { enabled: true, sshPublicKey: { keyData: keyA.publicKey } });
    const { result, release } = await connectAndHold();
    release();
    assert.equal((await result).status, 101);
    await waitUntil(() => supervisor.sessions.list().length === 0, 5000, 'the session to end with its client');
  });

  for (const [change, act, reason] of [
    ['disable', () => consoles.patch('vm1', { enabled: false }), 'the console for vm1 was disabled'],
    ['re-key', () => consoles.patch('vm1', { sshPublicKey: { keyData: keyB.publicKey } }), 'the console key for vm1 was changed'],
    ['delete', () => consoles.delete('vm1'), 'the console for vm1 was deleted'],
  ] as const) {
    test(`a ${change} during the wait refuses the client with the reason; no session is left`, async () => {
      await consoles.put('vm1', { enabled: true, sshPublicKey: { keyData: keyA.publicKey } });
      const { result, release } = await connectAndHold();
      await act();
      release();
      const { status, reason: said } = await result;
      assert.equal(status, 403, `admitted after a ${change}`);
      assert.equal(said, reason);
      assert.deepEqual(supervisor.sessions.list(), []);
    });
  }
});
