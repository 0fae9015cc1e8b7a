import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCleanups } from '../helpers/cleanup.js';
import { idleFlood } from '../helpers/flood.js';
import { startLabRelay, type LabRelay } from '../helpers/lab-relay.js';
import { OpenSshSession, type KeyPair } from '../helpers/openssh.js';
import { rssKiB } from '../helpers/proc.js';
import type { RelayProcess } from '../helpers/relay-process.js';
import { waitUntil } from '../helpers/wait.js';

const FLOOD = 5000;
const GRACE_S = 8;

/**
 * Pre-authentication limits against a flood of idle connections, as OpenSSH's LoginGraceTime and
 * MaxStartups behave: the relay closes every one within the grace time (most at once, by random
 * early drop and the per-source cap), a real OpenSSH client from another address reaches the
 * console during the flood, and the relay's memory stays bounded.
 */
describe(`pre-auth limits: ${FLOOD} idle connections to the SSH port, the VNC port and the API`, () => {
  let env: LabRelay;
  let relay: RelayProcess;
  let key: KeyPair;
  let user: string;
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    env = await startLabRelay('flood', { api: { listen: '127.0.0.1:0', loginGraceTime: `${GRACE_S}s` }, ssh: { port: 0, loginGraceTime: `${GRACE_S}s` }, vnc: { port: 0, loginGraceTime: `${GRACE_S}s` } });
    ({ relay, key, user } = env);
  });

  after(() => runCleanups([...cleanups.reverse(), () => env?.dispose()]));

  for (const listener of ['ssh', 'vnc', 'api'] as const) {
    test(`${listener}: every idle connection is closed by the relay within the grace time; a real client gets in meanwhile; RSS stays bounded`, async (t) => {
      const port = listener === 'ssh' ? relay.sshPort : listener === 'api' ? Number(new URL(relay.apiUrl).port) : Number(new URL((await relay.api('POST', '/v1/virtualMachines/lab-1/vncTokens')).body.url).port);
      const rssBefore = rssKiB(relay.child.pid!);
      const attack = idleFlood(port, FLOOD);
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
      } else if (listener === 'api') {
        // An API client from another address (a desktop, a scraper) during the flood: answered.
        const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const request = httpRequest({ host: '127.0.0.1', port, path: '/v1/relay', localAddress: '127.0.0.2', headers: { authorization: `Bearer ${relay.token}` } }, (response) => {
            let body = '';
            response.on('data', (chunk: Buffer) => (body += chunk.toString()));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
          });
          request.on('error', reject);
          request.end();
        });
        assert.equal(answer.status, 200, answer.body);
        t.diagnostic(`GET /v1/relay from 127.0.0.2 answered 200 with ${held()}`);
        assert.ok(stillOpen() > 0, 'the flood still held its slots when the real client got in');
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
