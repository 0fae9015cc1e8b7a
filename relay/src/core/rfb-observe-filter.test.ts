import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RfbObserveFilter } from './rfb-observe-filter.js';

const handshake = Buffer.concat([Buffer.from('RFB 003.008\n', 'latin1'), Buffer.from([1]), Buffer.from([0])]);
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 255]);
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const setPixelFormat = Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.alloc(16, 7)]);
const setEncodings = Buffer.concat([Buffer.from([2, 0]), u16(2), u32(0), u32(-223)]);
const updateRequest = Buffer.from([3, 1, 0, 0, 0, 0, 2, 128, 1, 224]);
const keyEvent = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
const pointer = Buffer.from([5, 1, 0, 10, 0, 20]);
const cutText = Buffer.concat([Buffer.from([6, 0, 0, 0]), u32(5), Buffer.from('HACK!')]);
const extendedCut = Buffer.concat([Buffer.from([6, 0, 0, 0]), u32(-4), Buffer.from([0, 0, 0, 1])]);
const qemuKey = Buffer.from([255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 30]);
const desktopSize = Buffer.concat([Buffer.from([251, 0]), u16(800), u16(600), Buffer.from([1, 0]), Buffer.alloc(16)]);
const fence = Buffer.concat([Buffer.from([248, 0, 0, 0]), u32(1), Buffer.from([3, 1, 2, 3])]);
const continuous = Buffer.from([150, 1, 0, 0, 0, 0, 2, 128, 1, 224]);
const xvp = Buffer.from([250, 0, 1, 2]);

test('an observer\'s handshake and view requests pass; input, cut text, XVP, desktop size and QEMU messages are dropped and counted', () => {
  const filter = new RfbObserveFilter();
  const stream = Buffer.concat([handshake, setPixelFormat, setEncodings, updateRequest, keyEvent, pointer, cutText, extendedCut, qemuKey, desktopSize, fence, continuous, xvp, updateRequest]);
  const result = filter.push(stream);
  assert.equal(result.error, undefined);
  const expected = Buffer.concat([Buffer.from('RFB 003.008\n', 'latin1'), Buffer.from([1]), Buffer.from([1]), setPixelFormat, setEncodings, updateRequest, fence, continuous, updateRequest]);
  assert.deepEqual(result.pass, expected, 'ClientInit goes out shared (1) though the viewer asked exclusive (0)');
  assert.deepEqual(result.dropped, ['KeyEvent', 'PointerEvent', 'ClientCutText', 'ClientCutText', 'QemuMessage', 'SetDesktopSize', 'XvpMessage']);
  assert.equal(filter.droppedCounts.get('ClientCutText'), 2);
});

test('messages split at every byte boundary come out the same', () => {
  const stream = Buffer.concat([handshake, setEncodings, keyEvent, updateRequest, cutText, fence]);
  const whole = new RfbObserveFilter().push(stream);
  const filter = new RfbObserveFilter();
  const passed: Buffer[] = [];
  const dropped: string[] = [];
  for (const byte of stream) {
    const part = filter.push(Buffer.from([byte]));
    assert.equal(part.error, undefined);
    passed.push(part.pass);
    dropped.push(...part.dropped);
  }
  assert.deepEqual(Buffer.concat(passed), whole.pass);
  assert.deepEqual(dropped, whole.dropped);
});

test('what cannot be followed is refused with a reason: RFB 3.3, other security types, unknown messages', () => {
  assert.match(new RfbObserveFilter().push(Buffer.from('RFB 003.003\n')).error ?? '', /3\.7 or 3\.8/);
  assert.match(new RfbObserveFilter().push(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([19])])).error ?? '', /not type 19/);
  assert.match(new RfbObserveFilter().push(Buffer.concat([handshake, Buffer.from([77, 0, 0, 0])])).error ?? '', /type 77/);
  assert.match(new RfbObserveFilter().push(Buffer.from('GET / HTTP/1.1\r\n')).error ?? '', /RFB version/);
  const vncAuth = new RfbObserveFilter().push(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([2]), Buffer.alloc(16, 9), Buffer.from([0]), keyEvent]));
  assert.equal(vncAuth.error, undefined);
  assert.deepEqual(vncAuth.dropped, ['KeyEvent'], 'the VNC password response passes, then messages are filtered');
});
