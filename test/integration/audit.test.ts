import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { runCleanups } from '../helpers/cleanup.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { generateKey, OpenSshSession, type KeyPair } from '../helpers/openssh.js';
import { ephemeralConfig, RELAY_BIN, startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

function verify(config: string): { code: number | null; out: string } {
  const result = spawnSync(process.execPath, [RELAY_BIN, 'audit', 'verify', '--config', config], { encoding: 'utf8' });
  return { code: result.status, out: `${result.stdout}${result.stderr}` };
}

interface Event {
  seq: number;
  type: string;
  action?: string;
  actor?: { tokenName?: string; keyFingerprint?: string };
  session?: string;
  kind?: string;
  path?: string;
  reason?: string;
  by?: string;
  bytesIn?: number;
  bytesOut?: number;
  durationMs?: number;
  result?: { status: number; code?: string };
  virtualMachine?: string;
}

/**
 * The audit trail with a real relay, lab VM, OpenSSH and a WebSocket VNC client: the events of a
 * whole console's life in order with actor and reason; the hash chain catches an edited line;
 * and kill -9 right after answers loses no answered event.
 */
describe('audit trail', () => {
  let lab: Lab;
  let relay: RelayProcess;
  let config: string;
  let key: KeyPair;
  const tmp = tempDir('audit');
  const dataDir = join(tmp.path, 'data');
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    lab = startLab(1);
    config = testConfig(lab.configPath, dataDir);
    relay = await startRelay(config, dataDir);
    key = generateKey(tmp.path, 'key');
  });

  after(() => runCleanups([...cleanups.reverse(), () => relay?.stop(), () => lab?.down(), tmp.dispose]));

  function serial(user: string): OpenSshSession {
    const session = new OpenSshSession({ port: relay.sshPort, user, key: key.privateKeyPath });
    cleanups.push(() => session.close());
    return session;
  }

  test('a console\'s life — created, SSH session, displaced, disabled, VNC session, deleted — is recorded in order, with who and why', async () => {
    const operator = await relay.api('POST', '/v1/tokens', { name: 'operator', scopes: ['consoles:read', 'consoles:write', 'vnc', 'audit'] });
    assert.equal(operator.status, 201);
    const as = (method: string, path: string, body?: unknown) => relay.api(method, path, body, { authorization: `Bearer ${operator.body.token}` });
    const start = (await relay.api('GET', '/v1/auditEvents?limit=1000')).body.value.at(-1).seq as number;

    const created = await as('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(created.status, 201);
    const user = created.body.virtualMachineAccessId as string;
    const first = serial(user);
    first.send('\r');
    await first.waitFor(/# /, 60_000);
    const second = serial(user);
    second.send('\r');
    await first.waitFor('[lifeline] session closed: another session was opened for lab-1');
    await second.waitFor(/# /, 30_000);
    await second.run('echo $((6*7))', /42/);
    assert.equal((await as('PATCH', '/v1/virtualMachines/lab-1/console', { enabled: false })).status, 200);
    await second.waitFor('[lifeline] session closed: the console for lab-1 was disabled');
    assert.equal((await as('PATCH', '/v1/virtualMachines/lab-1/console', { enabled: true })).status, 200);

    const minted = await as('POST', '/v1/virtualMachines/lab-1/vncTokens');
    assert.equal(minted.status, 201);
    const ws = new WebSocket(minted.body.url.replace(/^http/, 'ws'), ['binary']);
    let received = 0;
    ws.on('message', (data: Buffer) => {
      received += data.length;
      if (received === 12) ws.send(data); // echo the RFB version: bytes in as well as out
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    await waitUntil(() => received >= 12, 10_000, 'the RFB greeting');
    assert.equal((await as('DELETE', '/v1/virtualMachines/lab-1/console')).status, 204);
    assert.match((await closed).reason, /console for lab-1 was deleted/);

    const events = (await as('GET', `/v1/auditEvents?afterSeq=${start}&vm=lab-1&limit=1000`)).body.value as Event[];
    const summary = events.map((e) => (e.type === 'api' ? `api ${e.action} ${e.result!.status}` : `${e.type} ${e.kind}${e.reason ? ` ${e.reason}` : ''}`));
    assert.deepEqual(summary, [
      'api console.put 201',
      'session.opened serial',
      'session.opened serial',
      'session.closed serial displaced',
      'session.closed serial disabled',
      'api console.patch 200',
      'api console.patch 200',
      'api vncToken.create 201',
      'session.opened vnc',
      'session.closed vnc deleted',
      'api console.delete 204',
    ]);
    const [put, openedA, openedB, displaced, disabled, , , , openedVnc, closedVnc] = events as [Event, Event, Event, Event, Event, Event, Event, Event, Event, Event];
    assert.equal(put.actor!.tokenName, 'operator');
    assert.equal(openedA.actor!.keyFingerprint, created.body.keyFingerprint, 'a session names the key it came with');
    assert.equal(displaced.session, openedA.session);
    assert.equal(displaced.by, openedB.session, 'displaced by the second session');
    assert.equal(disabled.session, openedB.session);
    assert.ok(disabled.bytesOut! > 0 && disabled.bytesIn! > 0 && disabled.durationMs! > 0);
    assert.equal(openedVnc.path, 'websocket');
    assert.ok(closedVnc.bytesOut! >= 12, 'the RFB greeting and what followed it');
    assert.equal(closedVnc.bytesIn, 12, 'the echoed version');
    // Never a key, a token or console content.
    const file = readFileSync(join(dataDir, 'audit.jsonl'), 'utf8');
    assert.ok(!file.includes(key.publicKey.split(' ')[1]!), 'no public key');
    assert.ok(!file.includes(operator.body.token), 'no API token');
    assert.ok(!file.includes(minted.body.token), 'no VNC token');
    assert.ok(!file.includes('6*7'), 'no console content (what was typed)');
  });

  test('the chain verifies; editing one line makes "audit verify" fail and name that line', () => {
    const good = verify(config);
    assert.equal(good.code, 0, good.out);
    assert.match(good.out, /^ok: \d+ events in 1 file, seq 1 to \d+/);
    const path = join(dataDir, 'audit.jsonl');
    const lines = readFileSync(path, 'utf8').split('\n');
    const index = lines.findIndex((line) => line.includes('"action":"console.put"'));
    assert.ok(index > 0);
    // Someone makes the console look as if it was created disabled.
    writeFileSync(path, lines.map((line, i) => (i === index ? line.replace('"enabled":true', '"enabled":false') : line)).join('\n'));
    const bad = verify(config);
    assert.equal(bad.code, 1);
    assert.match(bad.out, new RegExp(`audit\\.jsonl line ${index + 1}: its hash does not match its content`));
    // Deleting the line instead: the line after it is named.
    lines.splice(index, 1);
    writeFileSync(path, lines.join('\n'));
    const removed = verify(config);
    assert.equal(removed.code, 1);
    assert.match(removed.out, new RegExp(`line ${index + 1}: its "prev" does not match`));
  });
});

describe('audit trail durability: kill -9 right after answers', () => {
  const tmp = tempDir('audit-kill');
  let relay: RelayProcess | undefined;
  after(() => runCleanups([() => relay?.stop('SIGKILL'), tmp.dispose]));

  test('every answered change is in the store and the trail after a kill -9, over several rounds, and the chain still verifies', async () => {
    const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay', {});
    const answered = new Set<string>();
    for (let round = 0; round < 4; round++) {
      relay = await startRelay(configPath, dataDir);
      const current = relay;
      let stop = false;
      let count = 0;
      // Four writers at once; the relay is killed the moment the 15th answer of the round arrives.
      await Promise.all(
        Array.from({ length: 4 }, async (_, writer) => {
          for (let i = 0; !stop; i++) {
            const name = `r${round}-w${writer}-${i}`;
            let response;
            try {
              response = await current.api('POST', '/v1/tokens', { name, scopes: ['consoles:read'] });
            } catch {
              return; // killed while this one was in flight: never answered
            }
            if (response.status !== 201) throw new Error(`unexpected ${response.status}`);
            answered.add(name);
            if (++count === 15 && !stop) {
              stop = true;
              current.child.kill('SIGKILL');
            }
          }
        }),
      );
      await current.stop();
    }
    const config = configPath;
    const result = verify(config);
    assert.equal(result.code, 0, result.out);
    const recorded = new Set(
      readFileSync(join(dataDir, 'audit.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { action?: string; result?: { status: number }; token?: { name: string } })
        .filter((event) => event.action === 'token.create' && event.result?.status === 201)
        .map((event) => event.token!.name),
    );
    assert.ok(answered.size >= 60, `answers: ${answered.size}`);
    const lost = [...answered].filter((name) => !recorded.has(name));
    assert.deepEqual(lost, [], 'answered but not in the audit trail');
    // And in the store: every answered write is there after the restarts.
    relay = await startRelay(configPath, dataDir);
    const stored = new Set(((await relay.api('GET', '/v1/tokens')).body.value as Array<{ name: string }>).map((t) => t.name));
    assert.deepEqual([...answered].filter((name) => !stored.has(name)), [], 'answered but not in the store');
  });
});
