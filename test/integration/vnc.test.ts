import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { pipeline, type Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2 from 'ssh2';
import { get as httpGet } from 'node:http';
import { createWebSocketStream, WebSocket } from 'ws';
import { launchChromium } from '../helpers/browser.js';
import { runCleanups } from '../helpers/cleanup.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { generateKey, OpenSshSession, spawnLocalForward, type KeyPair } from '../helpers/openssh.js';
import { rssKiB } from '../helpers/proc.js';
import { qmp } from '../helpers/qmp.js';
import { startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { rawEncodingOnly, rfbHandshake, updateRequest } from '../helpers/rfb.js';
import { freeVncPort, gvnccapture, pngSize } from '../helpers/vnc-client.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

interface WsClient {
  ws: WebSocket;
  stream: Duplex;
  closed: Promise<{ code: number; reason: string; at: number }>;
}

/** Opens the WebSocket path as noVNC does (subprotocol "binary"); rejects with the HTTP status when refused. */
function openWs(url: string): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['binary']);
    const closed = new Promise<{ code: number; reason: string; at: number }>((resolveClosed) =>
      ws.once('close', (code, reason) => resolveClosed({ code, reason: reason.toString(), at: Date.now() })),
    );
    ws.once('open', () => resolve({ ws, stream: createWebSocketStream(ws), closed }));
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => reject(Object.assign(new Error(`HTTP ${response.statusCode}: ${body.trim()}`), { status: response.statusCode, body })));
    });
    ws.once('error', (error) => reject(error));
  });
}

/** A local TCP port that forwards each connection to a fresh WebSocket VNC URL: how a plain VNC client uses the browser path. */
function wsBridge(nextUrl: () => Promise<string>): Promise<{ port: number; close: () => void }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer(async (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    try {
      const { stream } = await openWs(await nextUrl());
      pipeline(socket, stream, socket, () => undefined);
    } catch {
      socket.destroy();
    }
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        close: () => {
          for (const socket of sockets) socket.destroy();
          server.close();
        },
      }),
    ),
  );
}

describe('VNC through the relay: SSH forward and token WebSocket, with noVNC and real VNC clients', () => {
  let lab: Lab;
  let relay: RelayProcess;
  let key: KeyPair;
  let otherKey: KeyPair;
  const accessIds: Record<string, string> = {};
  const tmp = tempDir('vnc');
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    lab = startLab(2);
    const dataDir = join(tmp.path, 'data');
    // The relay gets no QMP socket here so the test can ask QEMU itself who is connected to VNC.
    const config = testConfig(lab.configPath, dataDir, { vnc: { port: 0, tokenTtl: '3s' } }, ({ qmp: _qmp, ...vm }) => vm);
    relay = await startRelay(config, dataDir);
    key = generateKey(tmp.path, 'key');
    otherKey = generateKey(tmp.path, 'other');
    for (const vm of ['lab-1', 'lab-2']) accessIds[vm] = await putConsole(vm, key);
  });

  after(() => runCleanups([...cleanups.reverse(), () => relay?.stop(), () => lab?.down(), tmp.dispose]));

  async function putConsole(vm: string, withKey: KeyPair): Promise<string> {
    const response = await relay.api('PUT', `/v1/virtualMachines/${vm}/console`, { enabled: true, sshPublicKey: { keyData: withKey.publicKey } });
    assert.ok(response.status === 200 || response.status === 201, JSON.stringify(response.body));
    return response.body.virtualMachineAccessId as string;
  }

  async function mint(vm: string): Promise<{ token: string; url: string; expiresAt: string }> {
    const response = await relay.api('POST', `/v1/virtualMachines/${vm}/vncTokens`);
    assert.equal(response.status, 201, JSON.stringify(response.body));
    return response.body;
  }

  async function vncClientsOf(vm: string): Promise<number> {
    const info = await qmp(join(lab.vmDir(vm), 'qmp.sock'), 'query-vnc');
    return (info.clients as unknown[]).length;
  }

  function sshForward(vm: string, port: number): ChildProcess {
    const child = spawnLocalForward({ port: relay.sshPort, user: accessIds[vm]!, key: key.privateKeyPath, localPort: port, destination: 'vnc:5900' });
    cleanups.push(() => child.kill('SIGKILL'));
    return child;
  }

  async function waitForPort(port: number): Promise<void> {
    await waitUntil(
      () =>
        new Promise<boolean>((resolve) => {
          const socket = connect({ port, host: '127.0.0.1' });
          socket.once('connect', () => {
            socket.destroy();
            resolve(true);
          });
          socket.once('error', () => resolve(false));
        }),
      10_000,
      `port ${port} to listen`,
    );
  }

  function openSerial(vm: string): OpenSshSession {
    const session = new OpenSshSession({ port: relay.sshPort, user: accessIds[vm]!, key: key.privateKeyPath });
    cleanups.push(() => session.close());
    return session;
  }

  test('noVNC in Chromium opens the token URL, connects to the QEMU desktop, and keystrokes reach the guest', async () => {
    const serial = openSerial('lab-1');
    serial.send('\r');
    await serial.waitFor(/lab-1:[^\n]*# /, 30_000);

    const { browser, close } = await launchChromium();
    cleanups.push(close);
    const page = await browser.newPage();
    const { url } = await mint('lab-1');
    const response = await page.goto(url);
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()['content-security-policy'] ?? '', /default-src 'none'; script-src 'self'/);
    await page.waitForFunction(() => document.body.dataset.state === 'connected', undefined, { timeout: 30_000 });
    await page.waitForFunction(() => /Connected to QEMU \(lab-1\)/.test(document.getElementById('status')!.textContent ?? ''), undefined, { timeout: 10_000 });
    assert.equal(new URL(page.url()).search, '', 'the page drops the single-use token from the address bar');

    // Type on the VM's screen (tty1) a command whose output goes to the serial console.
    const marker = `vnc-${Math.random().toString(36).slice(2, 10)}`;
    await page.locator('#screen canvas').click();
    await page.keyboard.type(`echo ${marker} `);
    await page.keyboard.press('Shift+Period'); // ">"
    await page.keyboard.type(' /dev/console');
    await page.keyboard.press('Enter');
    await serial.waitFor(marker, 20_000);

    const sessions = (await relay.api('GET', '/v1/sessions')).body.value as Array<Record<string, unknown>>;
    const vnc = sessions.find((s) => s.kind === 'vnc' && s.virtualMachine === 'lab-1');
    assert.equal(vnc?.path, 'websocket');
    assert.ok((vnc?.bytesIn as number) > 0 && (vnc?.bytesOut as number) > 0);
    await close();
    serial.close();
  });

  test('gvnccapture takes a screenshot through ssh -L 5901:vnc:5900', async () => {
    const port = await freeVncPort();
    const forward = sshForward('lab-1', port);
    await waitForPort(port);
    const file = join(tmp.path, 'ssh-forward.png');
    const capture = await gvnccapture(port, file);
    assert.equal(capture.status, 0, capture.output);
    const size = pngSize(file);
    assert.ok(size.width >= 640 && size.height >= 400 && size.bytes > 1000, JSON.stringify(size));
    forward.kill('SIGKILL');
  });

  test('gvnccapture takes a screenshot through the WebSocket path via a ws→TCP bridge', async () => {
    const bridge = await wsBridge(async () => (await mint('lab-2')).url);
    cleanups.push(bridge.close);
    // gvnccapture wants a display number: forward a 59xx port to the bridge.
    const port = await freeVncPort();
    const relayPort = createServer((socket) => {
      const upstream = connect({ port: bridge.port, host: '127.0.0.1' });
      pipeline(socket, upstream, socket, () => undefined);
    });
    await new Promise<void>((resolve) => relayPort.listen(port, '127.0.0.1', resolve));
    cleanups.push(() => relayPort.close());
    const file = join(tmp.path, 'websocket.png');
    const capture = await gvnccapture(port, file);
    assert.equal(capture.status, 0, capture.output);
    const size = pngSize(file);
    assert.ok(size.width >= 640 && size.height >= 400 && size.bytes > 1000, JSON.stringify(size));
  });

  test('a second VNC session, by either path, closes the first with a reason', async () => {
    const first = await openWs((await mint('lab-2')).url);
    assert.equal(first.ws.protocol, 'binary');
    const init = await rfbHandshake(first.stream);
    assert.equal(init.name, 'QEMU (lab-2)');

    // The second comes through an SSH forward on ssh2's client.
    const client = new ssh2.Client();
    cleanups.push(() => client.end());
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve()).once('error', reject);
      client.connect({ host: '127.0.0.1', port: relay.sshPort, username: accessIds['lab-2'], privateKey: readFileSync(key.privateKeyPath) });
    });
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      client.forwardOut('127.0.0.1', 0, 'vnc', 5900, (error, stream) => (error ? reject(error) : resolve(stream))),
    );
    assert.equal((await rfbHandshake(channel)).name, 'QEMU (lab-2)');
    const closed = await first.closed;
    assert.equal(closed.code, 4000);
    assert.match(closed.reason, /^another session was opened for lab-2 \(session [0-9a-f]{8} from 127\.0\.0\.1 via SSH\)$/);

    // And a WebSocket session displaces the SSH one: its channel ends (flowing, so 'close' can follow 'end').
    const channelClosed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
    channel.resume();
    const third = await openWs((await mint('lab-2')).url);
    await channelClosed;
    await rfbHandshake(third.stream);
    const vncSessions = ((await relay.api('GET', '/v1/sessions')).body.value as Array<{ kind: string; virtualMachine: string; path: string }>).filter(
      (s) => s.kind === 'vnc' && s.virtualMachine === 'lab-2',
    );
    assert.deepEqual(vncSessions.map((s) => s.path), ['websocket']);
    third.ws.close();
    client.end();
  });

  test('disabling the console closes a WebSocket VNC session, and re-keying an SSH-forwarded one, within 1 s', async (t) => {
    const ws = await openWs((await mint('lab-1')).url);
    await rfbHandshake(ws.stream);
    const disabledAt = Date.now();
    assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { enabled: false })).status, 200);
    const closed = await ws.closed;
    assert.equal(closed.reason, 'the console for lab-1 was disabled');
    assert.ok(closed.at - disabledAt < 1000, `closed after ${closed.at - disabledAt} ms`);
    t.diagnostic(`disable closed the WebSocket VNC session in ${closed.at - disabledAt} ms`);
    const refused = await relay.api('POST', '/v1/virtualMachines/lab-1/vncTokens');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'ConsoleDisabled');
    await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { enabled: true });

    const port = await freeVncPort();
    sshForward('lab-1', port);
    await waitForPort(port);
    const socket = connect({ port, host: '127.0.0.1' });
    await rfbHandshake(socket);
    const socketClosed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    const rekeyedAt = Date.now();
    assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { sshPublicKey: { keyData: otherKey.publicKey } })).status, 200);
    const at = await socketClosed;
    assert.ok(at - rekeyedAt < 1000, `closed after ${at - rekeyedAt} ms`);
    t.diagnostic(`re-key closed the SSH-forwarded VNC session in ${at - rekeyedAt} ms`);
    await putConsole('lab-1', key);
  });

  test('reused, expired, forged and missing tokens are refused without reaching the VM', async () => {
    await waitUntil(async () => (await vncClientsOf('lab-1')) === 0, 10_000, 'no VNC clients on lab-1');
    const used = await mint('lab-1');
    const first = await openWs(used.url);
    await rfbHandshake(first.stream);
    first.ws.close();
    await first.closed;
    await waitUntil(async () => (await vncClientsOf('lab-1')) === 0, 10_000, 'the first client gone');

    const expired = await mint('lab-1');
    await sleep(3500); // tokenTtl is 3 s in this suite
    const base = used.url.split('?')[0]!;
    const attempts: Array<[string, string, number]> = [
      ['reused', used.url, 403],
      ['expired', expired.url, 403],
      ['forged', `${base}?token=${'A'.repeat(32)}`, 403],
      ['missing', base, 401],
    ];
    for (const [name, url, status] of attempts) {
      const error = await openWs(url).then(
        () => undefined,
        (e: Error & { status?: number }) => e,
      );
      assert.equal(error?.status, status, `${name}: ${error?.message}`);
    }
    assert.equal(await vncClientsOf('lab-1'), 0, 'QEMU saw no VNC client for the refused tokens');
    assert.equal(((await relay.api('GET', '/v1/sessions')).body.value as Array<{ kind: string }>).filter((s) => s.kind === 'vnc').length, 0);
  });

  test('a token minted before a disable, a re-key or a delete is refused afterwards, even once the console is back', async () => {
    await waitUntil(async () => (await vncClientsOf('lab-2')) === 0, 10_000, 'no VNC clients on lab-2');
    const changes: Array<[string, () => Promise<unknown>]> = [
      ['disable, then enable', async () => {
        assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-2/console', { enabled: false })).status, 200);
        assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-2/console', { enabled: true })).status, 200);
      }],
      ['re-key, then the old key again', async () => {
        await putConsole('lab-2', otherKey);
        await putConsole('lab-2', key);
      }],
      ['delete, then create', async () => {
        assert.equal((await relay.api('DELETE', '/v1/virtualMachines/lab-2/console')).status, 204);
        accessIds['lab-2'] = await putConsole('lab-2', key);
      }],
    ];
    for (const [change, run] of changes) {
      const minted = await mint('lab-2');
      await run();
      const error = await openWs(minted.url).then(() => undefined, (e: Error & { status?: number }) => e);
      assert.equal(error?.status, 403, `${change}: ${error?.message ?? 'accepted'}`);
    }
    assert.equal(await vncClientsOf('lab-2'), 0, 'QEMU saw no VNC client');
    // A renewal (expiration only) voids nothing.
    const kept = await mint('lab-2');
    assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-2/console', { expiration: new Date(Date.now() + 3_600_000).toISOString() })).status, 200);
    const client = await openWs(kept.url);
    client.ws.close();
    await client.closed;
  });

  test('a WebSocket from another origin is refused before its token is used; the page\'s own origin and none are accepted', async () => {
    const minted = await mint('lab-2');
    const wsUrl = minted.url.replace(/^http/, 'ws');
    const refused = await new Promise<{ status?: number; body: string }>((resolve) => {
      const ws = new WebSocket(wsUrl, ['binary'], { headers: { Origin: 'http://evil.example' } });
      ws.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode, body }));
      });
      ws.once('open', () => resolve({ body: 'opened' }));
      ws.once('error', () => undefined);
    });
    assert.equal(refused.status, 403, refused.body);
    assert.match(refused.body, /a WebSocket from another origin \(http:\/\/evil\.example\) is refused/);
    const own = new URL(minted.url).origin;
    const ws = new WebSocket(wsUrl, ['binary'], { headers: { Origin: own } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    assert.equal((await rfbHandshake(createWebSocketStream(ws))).name, 'QEMU (lab-2)', 'the token was still good');
    ws.close();
  });

  test('the noVNC page slows an address that keeps presenting bad tokens, like the WebSocket does', async () => {
    const { url } = await mint('lab-1');
    const bad = `${url.split('?')[0]}?token=${'B'.repeat(32)}`;
    const load = (): Promise<{ status: number; ms: number }> =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        // From an address of its own, so the back-off does not slow the rest of the suite.
        httpGet(bad, { localAddress: '127.0.0.33' }, (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode ?? 0, ms: Date.now() - started }));
        }).on('error', reject);
      });
    const loads: Array<{ status: number; ms: number }> = [];
    for (let i = 0; i < 8; i++) loads.push(await load());
    assert.ok(loads.every((entry) => entry.status === 403));
    assert.ok(loads[0]!.ms < 200, `the first refusal is prompt (${loads[0]!.ms} ms)`);
    assert.ok(loads[7]!.ms >= 800, `the eighth waits (${loads[7]!.ms} ms)`);
  });

  test('a WebSocket session.opened names the API token that minted its VNC token', async () => {
    const minter = await relay.api('POST', '/v1/tokens', { name: 'vnc-minter', scopes: ['vnc'] });
    assert.equal(minter.status, 201);
    const minted = await relay.api('POST', '/v1/virtualMachines/lab-2/vncTokens', undefined, { authorization: `Bearer ${minter.body.token}` });
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const client = await openWs(minted.body.url);
    await rfbHandshake(client.stream);
    client.ws.close();
    await client.closed;
    const events = await waitUntil(async () => {
      const all = (await relay.api('GET', '/v1/auditEvents?vm=lab-2&limit=1000')).body.value as Array<Record<string, any>>;
      return all.filter((event) => event.type === 'session.opened' && event.path === 'websocket').at(-1)?.actor?.tokenId === minter.body.id ? all : undefined;
    }, 5000, 'the session.opened event');
    const opened = events.filter((event) => event.type === 'session.opened' && event.path === 'websocket').at(-1)!;
    assert.deepEqual(opened.actor, { tokenId: minter.body.id, tokenName: 'vnc-minter' });
  });

  test('the token URL without an upgrade serves the page; bad tokens and paths get clear answers', async () => {
    const { url } = await mint('lab-1');
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/lifeline\/vnc\.js">/);
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
    const base = url.split('?')[0]!;
    const stale = await fetch(`${base}?token=nope`);
    assert.equal(stale.status, 403);
    // The page says the configured vnc.tokenTtl (3 s in this suite), not a fixed 60 s.
    assert.match(await stale.text(), /invalid, already used, or older than 3 seconds/);
    assert.equal((await fetch(`${base}novnc/core/rfb.js`)).status, 200);
    assert.equal((await fetch(`${base}novnc/core/rfb.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
    for (const path of ['novnc/../package.json', 'novnc/%2e%2e/%2e%2e/package.json', 'novnc/core/../../../../etc/passwd.js', 'lifeline/index.html', 'etc/passwd']) {
      assert.equal((await fetch(`${base}${path}`)).status, 404, path);
    }
    assert.equal((await fetch(base, { method: 'POST' })).status, 405);
    // The page never used up the token.
    const ws = await openWs(url);
    ws.ws.close();
  });

  test('forwards to anything but vnc:5900 are refused and the connection still serves the serial console', async () => {
    const client = new ssh2.Client();
    cleanups.push(() => client.end());
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve()).once('error', reject);
      client.connect({ host: '127.0.0.1', port: relay.sshPort, username: accessIds['lab-1'], privateKey: readFileSync(key.privateKeyPath) });
    });
    for (const [host, port] of [['127.0.0.1', 22], ['vnc', 5901], ['localhost', 5900], ['VNC', 5900], ['10.0.0.1', 80]] as const) {
      const error = await new Promise<Error | undefined>((resolve) => client.forwardOut('127.0.0.1', 0, host, port, (e) => resolve(e)));
      assert.ok(error, `forward to ${host}:${port} must be refused`);
    }
    const shell = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.shell({ term: 'xterm' }, (e, s) => (e ? reject(e) : resolve(s))));
    let output = '';
    shell.on('data', (data: Buffer) => (output += data.toString()));
    shell.write('echo still-$((4*4))\r');
    await waitUntil(() => output.includes('still-16'), 15_000, 'serial output on the same connection');
    client.end();
  });

  test('a WebSocket reader that stops reading while the screen changes does not grow the relay', async (t) => {
    const ws = await openWs((await mint('lab-2')).url);
    const init = await rfbHandshake(ws.stream);
    ws.stream.write(rawEncodingOnly());
    // Keep asking for the whole screen, uncompressed (~1 MB a frame), while not reading a byte.
    ws.ws.pause();
    const ask = setInterval(() => ws.stream.write(updateRequest(init, false)), 10);
    cleanups.push(() => clearInterval(ask));
    const sessionBytes = async (): Promise<number> => {
      const list = (await relay.api('GET', '/v1/sessions')).body.value as Array<{ kind: string; virtualMachine: string; bytesOut: number }>;
      return list.find((s) => s.kind === 'vnc' && s.virtualMachine === 'lab-2')?.bytesOut ?? -1;
    };
    const rss = (): number => rssKiB(relay.child.pid!);
    await sleep(3000);
    const bytesPaused = await sessionBytes();
    const rssPaused = rss();
    await sleep(3000);
    const grew = (await sessionBytes()) - bytesPaused;
    assert.ok(bytesPaused < 64 * 1024 * 1024, `the relay read ${bytesPaused} bytes for a reader that reads nothing`);
    assert.ok(grew < 1024 * 1024, `the relay kept reading (${grew} bytes) while its client did not`);
    assert.ok(rss() - rssPaused < 16 * 1024, `relay RSS grew by ${rss() - rssPaused} KiB`);
    t.diagnostic(`paused reader: relay read ${bytesPaused} bytes from QEMU, then ${grew} more in 3 s; RSS ${rssPaused} KiB`);

    let received = 0;
    ws.stream.on('data', (chunk: Buffer) => (received += chunk.length));
    ws.ws.resume();
    await waitUntil(() => received > 50 * 1024 * 1024, 60_000, 'the updates to flow once the reader reads');
    clearInterval(ask);
    ws.ws.terminate();
  });
});
