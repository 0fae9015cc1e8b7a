import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { MANIFEST_FORMAT, type RecordingManifest } from './recording-bundle.js';
import { parseSegment, wholeRecordsEnd } from './rfb-format.js';
import { RfbRecorder } from './rfb-recorder.js';
import { VncBundle, type MessageKind } from './vnc-bundle.js';

/** A FramebufferUpdate of raw rectangles [x, y, w, h, byte value]. */
function update(...rects: Array<[number, number, number, number, number]>): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(rects.length, 2);
  return Buffer.concat([head, ...rects.map(([x, y, w, h, value]) => {
    const rect = Buffer.alloc(12);
    rect.writeUInt16BE(x, 0);
    rect.writeUInt16BE(y, 2);
    rect.writeUInt16BE(w, 4);
    rect.writeUInt16BE(h, 6);
    return Buffer.concat([rect, Buffer.alloc(w * h * 4, value)]);
  })]);
}

function serverInit(width: number, height: number, name: string): Buffer {
  const init = Buffer.alloc(24);
  init.writeUInt16BE(width, 0);
  init.writeUInt16BE(height, 2);
  init.writeUInt32BE(name.length, 20);
  return Buffer.concat([init, Buffer.from(name)]);
}

/** Runs a recorder against scripted server bytes, fed in small pieces (as a socket may deliver them). */
function record(server: Buffer[], pieceBytes = 7): { recorder: RfbRecorder; sent: Buffer; messages: Array<[Buffer, MessageKind]>; failure?: string } {
  const socket = new PassThrough();
  const sent: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => sent.push(chunk));
  const result: { messages: Array<[Buffer, MessageKind]>; failure?: string } = { messages: [] };
  const recorder = new RfbRecorder(socket, { screen: () => undefined, message: (message, kind) => result.messages.push([message, kind]), failed: (reason) => (result.failure = reason) });
  const all = Buffer.concat(server);
  for (let i = 0; i < all.length; i += pieceBytes) recorder.push(Buffer.from(all.subarray(i, i + pieceBytes)));
  return { recorder, sent: Buffer.concat(sent), ...result };
}

const handshake = [Buffer.from('RFB 003.008\n'), Buffer.from([1, 1]), Buffer.alloc(4), serverInit(8, 4, 'vm')];

test('the recorder asks for no authentication, shared, its pixel format and encodings; keeps the screen; the first update is the full one', () => {
  const { recorder, sent, messages, failure } = record([...handshake, update([0, 0, 8, 4, 9]), update([2, 1, 2, 2, 5]), Buffer.from([2])]);
  assert.equal(failure, undefined);
  assert.equal(sent.subarray(0, 12).toString(), 'RFB 003.008\n');
  assert.deepEqual([...sent.subarray(12, 14)], [1, 1], 'security None, then ClientInit shared');
  assert.equal(sent[14], 0, 'SetPixelFormat');
  assert.equal(sent[14 + 20], 2, 'SetEncodings');
  assert.deepEqual(messages.map(([, kind]) => kind), ['full', 'update', 'update']);
  assert.equal(recorder.framebuffer[(1 * 8 + 2) * 4], 5);
  assert.equal(recorder.framebuffer[0], 9);
  const keyframe = recorder.keyframe();
  assert.equal(keyframe.length, 16 + 8 * 4 * 4);
  assert.equal(keyframe.readUInt16BE(8), 8);
});

test('a VNC server that wants a password, or sends an encoding not asked for, fails the recorder with the reason', () => {
  assert.match(record([Buffer.from('RFB 003.008\n'), Buffer.from([1, 2])]).failure ?? '', /asks for authentication/);
  const bad = Buffer.alloc(16);
  bad.writeUInt16BE(1, 2);
  bad.writeInt32BE(16, 12); // ZRLE
  assert.match(record([...handshake, bad]).failure ?? '', /encoding 16/);
});

test('segments roll over, each starting with a full frame; a record cut off at the end is left out', async () => {
  const root = mkdtempSync(join(tmpdir(), 'll-rfb-'));
  try {
    const manifest: RecordingManifest = { format: MANIFEST_FORMAT, id: '00000000-0000-4000-8000-000000000001', relayId: 'r', virtualMachine: 'vm', kind: 'vnc', startedAt: new Date().toISOString(), complete: false, input: false, participants: [], markers: [], segments: [] };
    const bundle = new VncBundle(root, manifest, 0.05);
    const { recorder } = record(handshake);
    const feed = (message: Buffer, kind: MessageKind): void => {
      recorder.push(message);
      bundle.record(message, kind, recorder);
    };
    feed(update([0, 0, 8, 4, 1]), 'full');
    feed(update([0, 0, 1, 1, 2]), 'update');
    await new Promise((resolve) => setTimeout(resolve, 80));
    feed(update([1, 0, 1, 1, 3]), 'update');
    feed(update([2, 0, 1, 1, 4]), 'update');
    bundle.seal();
    assert.deepEqual(manifest.segments.map((s) => s.name), ['vnc-0000.rfb', 'vnc-0001.rfb']);
    const first = parseSegment(readFileSync(join(bundle.dir, 'vnc-0000.rfb')));
    const second = parseSegment(readFileSync(join(bundle.dir, 'vnc-0001.rfb')));
    assert.equal(first.records.length, 2, 'the full frame, then one update');
    assert.equal(second.records.length, 2, 'the full frame (with the update that started it), then the next');
    assert.equal(second.records[0]!.message.length, 16 + 8 * 4 * 4);
    assert.equal(second.records[0]!.message[16 + 4], 3, 'the new segment\'s full frame has the screen as it is');
    assert.ok(second.header.start >= 0.05);
    const data = readFileSync(join(bundle.dir, 'vnc-0001.rfb'));
    assert.equal(wholeRecordsEnd(data.subarray(0, data.length - 3)), data.length - 12 - second.records[1]!.message.length);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
