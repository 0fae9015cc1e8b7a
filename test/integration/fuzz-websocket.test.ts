import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type ssh2 from 'ssh2';
import { WebSocket } from 'ws';
import { startFakeConsole, type FakeConsole } from '../bench/fake-console.js';
import { runCleanups } from '../helpers/cleanup.js';
import { generateKey } from '../helpers/openssh.js';
import { openSsh2Shell } from '../helpers/ssh2-shell.js';
import { ephemeralConfig, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/** Cases per property in CI; `LIFELINE_FUZZ_RUNS` (npm run fuzz) runs more. */
const RUNS = Number(process.env.LIFELINE_FUZZ_RUNS ?? 200);
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A VNC-socket stand-in that echoes every byte and counts the relay's connections to it. */
async function echoServer(path: string): Promise<{ path: string; open: () => number; close: () => void }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    open: () => sockets.size,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

// ---- Frames, RFC 6455 §5.2, built by hand so that they can be wrong in every field. ----

interface FrameSpec {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
  /** How the length is written: minimal, in a needlessly long form, claiming more than is sent, or absurdly large. */
  length: 'minimal' | 'as16' | 'as64' | 'claimsMore' | 'huge';
}

function encodeFrame(spec: FrameSpec): Buffer {
  const payload = Buffer.from(spec.payload);
  const declared =
    spec.length === 'claimsMore' ? payload.length + 1 + (payload.length % 7) : spec.length === 'huge' ? 2n ** 62n + 5n : payload.length;
  const form = spec.length === 'as16' ? 16 : spec.length === 'as64' || spec.length === 'huge' ? 64 : Number(declared) < 126 ? 7 : Number(declared) < 65536 ? 16 : 64;
  const header: number[] = [(spec.fin ? 0x80 : 0) | ((spec.rsv & 7) << 4) | (spec.opcode & 0x0f)];
  const maskBit = spec.masked ? 0x80 : 0;
  if (form === 7) header.push(maskBit | Number(declared));
  else if (form === 16) header.push(maskBit | 126, (Number(declared) >> 8) & 0xff, Number(declared) & 0xff);
  else {
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(declared));
    header.push(maskBit | 127, ...big);
  }
  if (!spec.masked) return Buffer.concat([Buffer.from(header), payload]);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i & 3]!));
  return Buffer.concat([Buffer.from(header), mask, masked]);
}

const anyFrame: fc.Arbitrary<FrameSpec> = fc.record({
  fin: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  rsv: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 7 }) }),
  opcode: fc.oneof({ weight: 6, arbitrary: fc.constant(2) }, { weight: 3, arbitrary: fc.constantFrom(0, 1, 8, 9, 10) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) }),
  masked: fc.oneof({ weight: 8, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  payload: fc.oneof({ weight: 6, arbitrary: fc.uint8Array({ maxLength: 200 }) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 120, maxLength: 70_000 }) }),
  length: fc.oneof({ weight: 12, arbitrary: fc.constant('minimal' as const) }, { weight: 1, arbitrary: fc.constantFrom('as16' as const, 'as64' as const, 'claimsMore' as const, 'huge' as const) }),
});

/** Well-formed client traffic: binary data and pings, masked, each frame whole. */
const goodFrame: fc.Arbitrary<FrameSpec> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ payload: fc.uint8Array({ minLength: 1, maxLength: 3000 }) }).map(({ payload }) => ({ fin: true, rsv: 0, opcode: 2, masked: true, payload, length: 'minimal' as const })) },
  { weight: 1, arbitrary: fc.record({ payload: fc.uint8Array({ maxLength: 125 }) }).map(({ payload }) => ({ fin: true, rsv: 0, opcode: 9, masked: true, payload, length: 'minimal' as const })) },
);

/** Where the byte stream is cut into writes (the relay must not care). */
const cuts = fc.array(fc.integer({ min: 1, max: 4000 }), { maxLength: 4 });

function cutInto(bytes: Buffer, points: number[]): Buffer[] {
  const sorted = [...new Set(points.filter((p) => p < bytes.length))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const point of [...sorted, bytes.length]) {
    pieces.push(bytes.subarray(start, point));
    start = point;
  }
  return pieces.filter((piece) => piece.length > 0);
}

interface ServerFrames {
  /** Binary payload bytes received, in order. */
  data: Buffer;
  pongs: number;
  closeCode?: number;
  /** A frame the relay must never send (masked, reserved bits, unknown opcode, an oversized control frame). */
  malformed?: string;
}

/** Reads what the relay sends after a 101 and checks each frame is one a server may send. */
function parseServerFrames(bytes: Buffer): ServerFrames {
  const out: ServerFrames = { data: Buffer.alloc(0), pongs: 0 };
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset + 2 <= bytes.length) {
    const b0 = bytes[offset]!;
    const b1 = bytes[offset + 1]!;
    const opcode = b0 & 0x0f;
    let length = b1 & 0x7f;
    let at = offset + 2;
    if (length === 126) {
      if (at + 2 > bytes.length) break;
      length = bytes.readUInt16BE(at);
      at += 2;
    } else if (length === 127) {
      if (at + 8 > bytes.length) break;
      length = Number(bytes.readBigUInt64BE(at));
      at += 8;
    }
    if (at + length > bytes.length) break;
    const payload = bytes.subarray(at, at + length);
    if (b1 & 0x80) out.malformed = 'a masked server frame';
    if (b0 & 0x70) out.malformed = 'reserved bits set';
    if (![0, 1, 2, 8, 9, 10].includes(opcode)) out.malformed = `opcode ${opcode}`;
    if (opcode >= 8 && (length > 125 || !(b0 & 0x80))) out.malformed = 'an oversized or fragmented control frame';
    if (opcode === 2 || opcode === 0) chunks.push(payload);
    if (opcode === 10) out.pongs++;
    if (opcode === 8) out.closeCode = length >= 2 ? payload.readUInt16BE(0) : 1005;
    offset = at + length;
  }
  out.data = Buffer.concat(chunks);
  return out;
}

interface Exchange {
  status: number;
  head: string;
  frames: ServerFrames;
  /** The relay closed the TCP connection (rather than us, after a quiet spell). */
  closedByRelay: boolean;
}

let sourceCounter = 0;
/** A new loopback source address per connection, so the per-address limits and bad-token slowdown of one case never reach the next. */
function nextSource(): string {
  sourceCounter++;
  return `127.${1 + ((sourceCounter >> 16) & 0x7f)}.${(sourceCounter >> 8) & 0xff}.${1 + (sourceCounter & 0xfe)}`;
}

/**
 * Sends an upgrade request, then (if answered 101) `frames` in `pieces`, and collects everything
 * until the relay closes or `quietMs` pass without a byte (or `untilData` bytes of data came back).
 */
function exchange(port: number, request: Buffer, pieces: Buffer[], quietMs: number, untilData = Infinity): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: nextSource() });
    let received = Buffer.alloc(0);
    let headEnd = -1;
    let timer: NodeJS.Timeout | undefined;
    let closedByRelay = false;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const head = headEnd < 0 ? received.toString('latin1') : received.subarray(0, headEnd).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, frames: status === 101 ? parseServerFrames(received.subarray(headEnd + 4)) : { data: Buffer.alloc(0), pongs: 0 }, closedByRelay });
    };
    const quiet = (): void => {
      clearTimeout(timer);
      timer = setTimeout(finish, quietMs);
    };
    socket.on('connect', () => {
      socket.write(request);
      quiet();
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (headEnd < 0) {
        headEnd = received.indexOf('\r\n\r\n');
        if (headEnd >= 0 && /^HTTP\/1\.1 101/.test(received.toString('latin1'))) for (const piece of pieces) socket.write(piece);
      } else if (untilData !== Infinity && parseServerFrames(received.subarray(headEnd + 4)).data.length >= untilData) return finish();
      quiet();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closedByRelay = !done;
      finish();
    });
  });
}

function upgradeRequest(token: string, headers: Array<[string, string]> = [], key = randomBytes(16).toString('base64')): Buffer {
  const base: Array<[string, string]> = [
    ['Host', '127.0.0.1'],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', key],
    ['Sec-WebSocket-Version', '13'],
    ['Sec-WebSocket-Protocol', 'binary'],
  ];
  // A fuzzed header replaces the standard one of that name (or adds a second one, when asked to).
  const replaced = new Set(headers.filter(([name]) => !name.startsWith('+')).map(([name]) => name.toLowerCase()));
  const lines = [...base.filter(([name]) => !replaced.has(name.toLowerCase())), ...headers.map(([name, value]) => [name.replace(/^\+/, ''), value] as const)];
  return Buffer.from(`GET /?token=${token} HTTP/1.1\r\n${lines.map(([name, value]) => `${name}: ${value}`).join('\r\n')}\r\n\r\n`, 'latin1');
}

describe('fuzzing the WebSocket VNC path: upgrade requests and frames after the upgrade', () => {
  const tmp = tempDir('fuzz-websocket');
  let serial: FakeConsole;
  let fuzzVnc: Awaited<ReturnType<typeof echoServer>>;
  let otherVnc: Awaited<ReturnType<typeof echoServer>>;
  let relay: RelayProcess;
  let vncPort: number;
  let ssh: ssh2.Client;
  let shell: ssh2.ClientChannel;
  let shellText = '';
  let other: WebSocket;
  let otherEcho = Buffer.alloc(0);

  before(async () => {
    fuzzVnc = await echoServer(join(tmp.path, 'fuzz-vnc.sock'));
    otherVnc = await echoServer(join(tmp.path, 'other-vnc.sock'));
    serial = await startFakeConsole(join(tmp.path, 'serial.sock'), 0);
    const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay', {
      vnc: { port: 0, tokenTtl: '90s' },
      virtualMachines: [
        { name: 'fuzz-vm', serial: serial.path, vnc: fuzzVnc.path },
        { name: 'other-vm', vnc: otherVnc.path },
      ],
    });
    relay = await startRelay(configPath, dataDir);
    vncPort = (await relay.api('GET', '/v1/privateEndpoints/default')).body.vncPort;
    const key = generateKey(tmp.path, 'key');
    for (const vm of ['fuzz-vm', 'other-vm']) assert.equal((await relay.api('PUT', `/v1/virtualMachines/${vm}/console`, { enabled: true, sshPublicKey: { keyData: key.publicKey } })).status, 201);
    // Sessions the fuzzing must leave alone: the fuzzed VM's serial console over SSH, and another VM's screen.
    const access = (await relay.api('GET', '/v1/virtualMachines/fuzz-vm/console')).body.virtualMachineAccessId;
    ({ client: ssh, shell } = await openSsh2Shell({ port: relay.sshPort, user: access, privateKey: readFileSync(key.privateKeyPath) }));
    shell.on('data', (data: Buffer) => (shellText += data.toString()));
    const minted = await relay.api('POST', '/v1/virtualMachines/other-vm/vncTokens');
    other = new WebSocket(minted.body.url.replace(/^http/, 'ws'), ['binary']);
    other.on('message', (data: Buffer) => (otherEcho = Buffer.concat([otherEcho, data])));
    await new Promise((resolve, reject) => other.once('open', resolve).once('error', reject));
  });

  after(() => runCleanups([() => other?.terminate(), () => ssh?.end(), () => relay?.stop(), () => fuzzVnc?.close(), () => otherVnc?.close(), () => serial?.close(), tmp.dispose]));

  async function mint(): Promise<string> {
    const minted = await relay.api('POST', '/v1/virtualMachines/fuzz-vm/vncTokens');
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    return minted.body.token as string;
  }

  /** The relay runs, holds no connection to the fuzzed VM's screen, and the other two sessions still carry bytes. */
  async function assertUnharmed(marker: string): Promise<void> {
    assert.equal(relay.child.exitCode, null, `the relay is running:\n${relay.output().slice(-2000)}`);
    await waitUntil(() => fuzzVnc.open() === 0, 5000, `every connection to the fuzzed VM's VNC socket to be closed (${fuzzVnc.open()} open)`);
    shell.write(marker);
    await waitUntil(() => shellText.includes(marker), 5000, `the serial session to echo (got ${JSON.stringify(shellText.slice(-300))})`);
    other.send(Buffer.from(marker));
    await waitUntil(() => otherEcho.includes(marker), 5000, "the other VM's VNC session to echo");
    const sessions = (await relay.api('GET', '/v1/sessions')).body.value as Array<{ virtualMachine: string; kind: string }>;
    assert.deepEqual(sessions.map((s) => `${s.virtualMachine}/${s.kind}`).sort(), ['fuzz-vm/serial', 'other-vm/vnc']);
  }

  test('a bad handshake with a good token is refused with a 400 and does not use up the token or hold the VM screen', async () => {
    const token = await mint();
    for (const headers of [[['Sec-WebSocket-Version', '7']], [['Sec-WebSocket-Key', 'short']], [['Upgrade', 'h2c']], [['Sec-WebSocket-Protocol', 'a b,,']]] as Array<Array<[string, string]>>) {
      const refused = await exchange(vncPort, upgradeRequest(token, headers), [], 300);
      assert.equal(refused.status, 400, `${JSON.stringify(headers)}: ${refused.head}`);
    }
    assert.equal(fuzzVnc.open(), 0, "no connection to the VM's screen is left open by a refused handshake");
    const good = await exchange(vncPort, upgradeRequest(token), [encodeFrame({ fin: true, rsv: 0, opcode: 2, masked: true, payload: Buffer.from('hello'), length: 'minimal' })], 1000, 5);
    assert.equal(good.status, 101, 'the token still works after the refused handshakes');
    assert.equal(good.frames.data.toString(), 'hello');
    // ws's own handshake rules decide, not a copy of them: it reads the version as a number, so "013" is 13.
    const padded = await exchange(vncPort, upgradeRequest(await mint(), [['Sec-WebSocket-Version', '013']]), [], 1000);
    assert.equal(padded.status, 101, padded.head);
    // A refusal says what was wrong, in plain text.
    const badVersion = await exchange(vncPort, upgradeRequest(await mint(), [['Sec-WebSocket-Version', '7']]), [], 300);
    assert.match(badVersion.head, /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*Sec-WebSocket-Version: 13, 8/i);
    await assertUnharmed('after-bad-handshakes');
  });

  test(`${RUNS} random upgrade requests (tokens, versions, keys, protocols, extensions, origins): 101 only for a good token and handshake, never a 5xx`, async (t) => {
    const tokenKinds = fc.constantFrom('fresh', 'used', 'random', 'empty', 'long', 'encoded');
    const headerNames = fc.constantFrom('Sec-WebSocket-Version', 'Sec-WebSocket-Key', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Origin', 'Upgrade', 'Connection', '+Sec-WebSocket-Key', '+Upgrade', '+Sec-WebSocket-Protocol', 'X-Forwarded-For', 'Cookie');
    const headerValues = fc.oneof(
      fc.constantFrom('13', '8', '0', '14', '13, 8', '', 'websocket', 'WebSocket', 'Upgrade', 'keep-alive, Upgrade', 'binary', 'base64', 'binary, base64', 'permessage-deflate; client_max_window_bits', 'permessage-deflate; server_max_window_bits=7', 'x-webkit-deflate-frame', 'http://evil.example', 'null', 'dGhlIHNhbXBsZSBub25jZQ=='),
      fc.string({ maxLength: 30 }),
      fc.string({ unit: 'binary-ascii', maxLength: 30 }),
    );
    const cases = fc.record({ token: tokenKinds, headers: fc.array(fc.tuple(headerNames, headerValues), { maxLength: 3 }) });
    let upgraded = 0;
    let used = await mint();
    await exchange(vncPort, upgradeRequest(used), [], 200);
    await fc.assert(
      fc.asyncProperty(cases, async ({ token: kind, headers }) => {
        const token =
          kind === 'fresh' ? await mint() : kind === 'used' ? used : kind === 'random' ? randomBytes(24).toString('base64url') : kind === 'empty' ? '' : kind === 'long' ? 'A'.repeat(4000) : '%ff%00%2e';
        const request = upgradeRequest(token, headers.map(([name, value]) => [name, value.replace(/[\r\n]/g, '')]));
        const result = await exchange(vncPort, request, [], 150);
        assert.ok(result.status === 0 || (result.status >= 100 && result.status < 500), `a ${result.status} for ${JSON.stringify(request.toString('latin1').slice(0, 400))}:\n${result.head.slice(0, 300)}`);
        if (result.status === 101) {
          upgraded++;
          assert.equal(kind, 'fresh', `101 for a ${kind} token: ${JSON.stringify(request.toString('latin1').slice(0, 400))}`);
          const key = /^sec-websocket-key: *(.*)$/im.exec(request.toString('latin1'))?.[1];
          assert.ok(result.head.includes(createHash('sha1').update(`${key}${GUID}`).digest('base64')), 'the accept header answers the key sent');
          used = token;
        }
      }),
      { numRuns: RUNS },
    );
    t.diagnostic(`${upgraded} of ${RUNS} upgraded`);
    assert.ok(upgraded > 0, 'some random requests were good enough to be upgraded');
    await assertUnharmed('after-upgrade-fuzz');
  });

  test(`${RUNS} random frame sequences after the upgrade: each is echoed to the byte or closed with a protocol close code; nothing else is disturbed`, async (t) => {
    const sequences = fc.oneof(
      { weight: 1, arbitrary: fc.record({ good: fc.constant(true), frames: fc.array(goodFrame, { minLength: 1, maxLength: 6 }), cuts, tail: fc.constant(new Uint8Array()) }) },
      { weight: 2, arbitrary: fc.record({ good: fc.constant(false), frames: fc.array(anyFrame, { minLength: 1, maxLength: 6 }), cuts, tail: fc.oneof({ weight: 3, arbitrary: fc.constant(new Uint8Array()) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 20 }) }) }) },
    );
    const tally = { echoed: 0, closed: 0, waiting: 0 };
    await fc.assert(
      fc.asyncProperty(sequences, async ({ good, frames, cuts: points, tail }) => {
        const bytes = Buffer.concat([...frames.map(encodeFrame), Buffer.from(tail)]);
        const sent = Buffer.concat(frames.filter((f) => f.opcode === 2).map((f) => Buffer.from(f.payload)));
        const result = await exchange(vncPort, upgradeRequest(await mint()), cutInto(bytes, points), good ? 2000 : 150, good ? sent.length : Infinity);
        assert.equal(result.status, 101, result.head);
        const { frames: answer } = result;
        assert.equal(answer.malformed, undefined, `the relay sent ${answer.malformed}`);
        // A close code the relay may send: its own protocol codes, or the client's own valid code echoed (RFC 6455 §7.4).
        if (answer.closeCode !== undefined) assert.ok(answer.closeCode === 1005 || (answer.closeCode >= 1000 && answer.closeCode <= 1014 && ![1004, 1005, 1006].includes(answer.closeCode)) || (answer.closeCode >= 3000 && answer.closeCode <= 4999), `close code ${answer.closeCode}`);
        // When every frame's length is honest and nothing trails them, whatever came back is what reached the VM,
        // in order: a prefix of the data frames' payloads (a frame claiming more would swallow the next ones).
        if (tail.length === 0 && frames.every((f) => f.length !== 'claimsMore')) {
          const everything = Buffer.concat(frames.filter((f) => f.opcode <= 2).map((f) => Buffer.from(f.payload)));
          assert.ok(everything.subarray(0, answer.data.length).equals(answer.data), `the echo (${answer.data.length} bytes) is the start of the data sent (${everything.length} bytes), in order`);
        }
        if (good) {
          assert.equal(answer.closeCode, undefined, 'a well-formed sequence is not closed');
          assert.ok(answer.data.equals(sent), `all ${sent.length} bytes echoed (${answer.data.length} came back)`);
          tally.echoed++;
        } else if (answer.closeCode !== undefined || result.closedByRelay) tally.closed++;
        else tally.waiting++;
      }),
      { numRuns: RUNS },
    );
    t.diagnostic(`outcomes: ${JSON.stringify(tally)}`);
    assert.ok(tally.echoed > 0 && tally.closed > 0, `both outcomes were exercised: ${JSON.stringify(tally)}`);
    await assertUnharmed('after-frame-fuzz');
  });
});
