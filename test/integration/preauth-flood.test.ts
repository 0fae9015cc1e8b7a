import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCleanups } from '../helpers/cleanup.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { generateKey, OpenSshSession, type KeyPair } from '../helpers/openssh.js';
import { rssKiB } from '../helpers/proc.js';
import { startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

const FLOOD = 5000;
const GRACE_S = 8;

interface Flood {
  /** Resolves once every connection of the flood was made. */
  done: Promise<void>;
  sockets: Socket[];
  /** When each socket connected (ms since the flood began). */
  openedAt: number[];
  /** When each socket was closed by the other side (ms since the flood began), or undefined. */
  closedAt: Array<number | undefined>;
  started: number;
  destroy(): void;
}

/**
 * `count` TCP connections from 127.0.0.1 that never send a byte, opened 250 at a time. (All at
 * once, thousands would overflow the listen backlog: the kernel drops their handshake's last ACK
 * and they sit half-open without the relay ever seeing them — nothing any server can close.)
 */
function flood(port: number, count: number): Flood {
  const started = Date.now();
  const sockets: Socket[] = [];
  const closedAt: Array<number | undefined> = new Array<number | undefined>(count).fill(undefined);
  const openedAt: number[] = new Array<number>(count).fill(0);
  const done = (async () => {
  for (let batch = 0; batch < count; batch += 250) {
    await Promise.all(
      Array.from({ length: Math.min(250, count - batch) }, (_, offset) =>
        new Promise<void>((resolve) => {
          const index = batch + offset;
          const socket = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1' });
          sockets.push(socket);
          socket.on('error', () => undefined);
          socket.on('data', () => undefined);
          socket.once('close', () => (closedAt[index] = Date.now() - started));
          socket.once('connect', () => {
            openedAt[index] = Date.now() - started;
            resolve();
          });
          socket.once('close', () => resolve());
        }),
      ),
    );
    await sleep(10);
  }
  })();
  return { done, sockets, openedAt, closedAt, started, destroy: () => sockets.forEach((s) => s.destroy()) };
}

/**
 * Pre-authentication limits against a flood of idle connections, as OpenSSH's LoginGraceTime and
 * MaxStartups behave: the relay closes every one within the grace time (most at once, by random
 * early drop and the per-source cap), a real OpenSSH client from another address reaches the
 * console during the flood, and the relay's memory stays bounded.
 */
describe(`pre-auth limits: ${FLOOD} idle connections to the SSH port and to the VNC port`, () => {
  let lab: Lab;
  let relay: RelayProcess;
  let key: KeyPair;
  let user: string;
  const tmp = tempDir('flood');
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    lab = startLab(1);
    const dataDir = join(tmp.path, 'data');
    relay = await startRelay(testConfig(lab.configPath, dataDir, { ssh: { port: 0, loginGraceTime: `${GRACE_S}s` }, vnc: { port: 0, loginGraceTime: `${GRACE_S}s` } }), dataDir);
    key = generateKey(tmp.path, 'key');
    user = (await relay.api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } })).body.virtualMachineAccessId;
  });

  after(() => runCleanups([...cleanups.reverse(), () => relay?.stop(), () => lab?.down(), tmp.dispose]));

  for (const listener of ['ssh', 'vnc'] as const) {
    test(`${listener}: every idle connection is closed by the relay within the grace time; a real client gets in meanwhile; RSS stays bounded`, async (t) => {
      const port = listener === 'ssh' ? relay.sshPort : Number(new URL((await relay.api('POST', '/v1/virtualMachines/lab-1/vncTokens')).body.url).port);
      const rssBefore = rssKiB(relay.child.pid!);
      const attack = flood(port, FLOOD);
      cleanups.push(() => attack.destroy());
      let rssPeak = rssKiB(relay.child.pid!);
      // The real client starts while the flood is still being thrown at the port.
      await sleep(200);
      const stillOpen = (): number => attack.closedAt.filter((at, i) => at === undefined && i < attack.sockets.length).length;
      const held = (): string => `${attack.sockets.length} flood connections made, ${stillOpen()} still open`;

      if (listener === 'ssh') {
        // A real user from another address, during the flood: the per-source cap keeps room for them.
        const session = new OpenSshSession({ port: relay.sshPort, user, key: key.privateKeyPath, bindAddress: '127.0.0.2' });
        cleanups.push(() => session.close());
        session.send('\r');
        await session.waitFor(/# /, 30_000);
        await session.run('echo during-flood-$((6*7))', /during-flood-42/);
        t.diagnostic(`OpenSSH reached the console from 127.0.0.2 with ${held()}`);
        assert.ok(stillOpen() > 0, 'the flood still held its slots when the real client got in');
        session.close();
      } else {
        // A real WebSocket client from another address opens the VNC stream during the flood.
        const token = (await relay.api('POST', '/v1/virtualMachines/lab-1/vncTokens')).body.token as string;
        const { WebSocket } = await import('ws');
        const ws = new WebSocket(`ws://127.0.0.1:${port}/?token=${token}`, ['binary'], { localAddress: '127.0.0.2' });
        cleanups.push(() => ws.terminate());
        const greeting = await new Promise<string>((resolve, reject) => {
          ws.once('message', (data: Buffer) => resolve(data.toString('latin1')));
          ws.once('error', reject);
        });
        assert.match(greeting, /^RFB 003\.00\d\n/);
        t.diagnostic(`a WebSocket client got the VM's RFB greeting from 127.0.0.2 with ${held()}`);
        assert.ok(stillOpen() > 0, 'the flood still held its slots when the real client got in');
        ws.close();
      }
      await attack.done;

      const deadline = Math.max(...attack.openedAt) + (GRACE_S + 3) * 1000;
      while (attack.closedAt.some((at) => at === undefined) && Date.now() - attack.started < deadline) {
        rssPeak = Math.max(rssPeak, rssKiB(relay.child.pid!));
        await sleep(200);
      }
      const open = attack.closedAt.filter((at) => at === undefined).length;
      assert.equal(open, 0, `${open} of ${FLOOD} idle connections still open ${deadline} ms after the flood began`);
      // How long each connection lived, from its connect to its close by the relay.
      const lived = attack.closedAt.map((at, index) => at! - attack.openedAt[index]!);
      const latest = Math.max(...lived);
      const immediate = lived.filter((ms) => ms < 1000).length;
      t.diagnostic(`${FLOOD} closed: ${immediate} within 1 s of connecting (dropped at accept), the longest lived ${latest} ms (grace ${GRACE_S} s); RSS ${rssBefore} → peak ${rssPeak} KiB`);
      assert.ok(latest <= (GRACE_S + 1.5) * 1000, `one lived ${latest} ms`);
      assert.ok(immediate >= FLOOD - 200, `most are dropped at once (MaxStartups, per source): ${immediate}`);
      assert.ok(rssPeak - rssBefore < 100 * 1024, `RSS grew by ${rssPeak - rssBefore} KiB during the flood`);

      const metrics = await fetch(`${relay.apiUrl}/metrics`, { headers: { authorization: `Bearer ${relay.token}` } }).then((r) => r.text());
      const dropped = metrics.split('\n').filter((line) => line.startsWith(`lifeline_preauth_dropped_total{listener="${listener}"`));
      t.diagnostic(dropped.join('; '));
      assert.ok(dropped.some((line) => /reason="per-source"/.test(line)));
      await waitUntil(async () => (await fetch(`${relay.apiUrl}/metrics`, { headers: { authorization: `Bearer ${relay.token}` } }).then((r) => r.text())).includes(`lifeline_preauth_connections{listener="${listener}"} 0`), 5000, 'no pre-auth connection left');
      attack.destroy();
    });
  }
});
