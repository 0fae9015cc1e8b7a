/**
 * The client-to-server half of an RFB (VNC) stream for an observer (docs/sharing.md): what lets it
 * see the screen passes, what would change the VM is dropped, so a read-only view is enforced by
 * the relay and not by the viewer. Passed: the handshake, SetPixelFormat, SetEncodings,
 * FramebufferUpdateRequest, EnableContinuousUpdates and ClientFence. Dropped (and counted): key and
 * pointer events, cut text, XVP, SetDesktopSize and QEMU's messages (extended key events, audio).
 * ClientInit is always sent as shared, so an observer never ends another viewer's connection.
 *
 * RFB 3.7 and 3.8 with the None and VNC-password security types (QEMU's and noVNC's); anything else
 * is refused with a message, since its framing cannot be followed. Pure and incremental: messages
 * may be split across chunks.
 */

export type DroppedMessage = 'KeyEvent' | 'PointerEvent' | 'ClientCutText' | 'XvpMessage' | 'SetDesktopSize' | 'QemuMessage';

export interface FilterResult {
  /** Bytes to forward to the VM's VNC server, in order. */
  pass: Buffer;
  /** Messages dropped from this chunk, by name. */
  dropped: DroppedMessage[];
  /** Set when the stream cannot be followed: the connection is to be closed with this reason. */
  error?: string;
}

type Phase = 'version' | 'security' | 'auth' | 'init' | 'messages' | 'failed';

const SECURITY_NONE = 1;
const SECURITY_VNC = 2;

/** How long a client message is, given its first bytes; undefined while more bytes are needed; a string when it cannot be framed. */
function messageLength(buffer: Buffer): number | undefined | string {
  const type = buffer[0]!;
  switch (type) {
    case 0: // SetPixelFormat
      return 20;
    case 2: {
      // SetEncodings: type, pad, u16 count, count × s32
      if (buffer.length < 4) return undefined;
      return 4 + 4 * buffer.readUInt16BE(2);
    }
    case 3: // FramebufferUpdateRequest
      return 10;
    case 4: // KeyEvent
      return 8;
    case 5: // PointerEvent
      return 6;
    case 6: {
      // ClientCutText: type, 3 pad, s32 length (negative: the extended clipboard, |length| bytes)
      if (buffer.length < 8) return undefined;
      return 8 + Math.abs(buffer.readInt32BE(4));
    }
    case 150: // EnableContinuousUpdates
      return 10;
    case 248: {
      // ClientFence: type, 3 pad, u32 flags, u8 length, payload
      if (buffer.length < 9) return undefined;
      return 9 + buffer[8]!;
    }
    case 250: // XVP: type, pad, version, message
      return 4;
    case 251: {
      // SetDesktopSize: type, pad, u16 width, u16 height, u8 screens, pad, screens × 16
      if (buffer.length < 8) return undefined;
      return 8 + 16 * buffer[6]!;
    }
    case 255: {
      // QEMU: u8 submessage; 0 extended key event (12), 1 audio (u16 operation: 2 set format is 10, others 4)
      if (buffer.length < 2) return undefined;
      if (buffer[1] === 0) return 12;
      if (buffer[1] === 1) {
        if (buffer.length < 4) return undefined;
        return buffer.readUInt16BE(2) === 2 ? 10 : 4;
      }
      return `QEMU client message ${buffer[1]} cannot be followed in observe mode`;
    }
    default:
      return `client message type ${type} is not one an observer may send (docs/sharing.md lists them)`;
  }
}

const DROPPED: Partial<Record<number, DroppedMessage>> = { 4: 'KeyEvent', 5: 'PointerEvent', 6: 'ClientCutText', 250: 'XvpMessage', 251: 'SetDesktopSize', 255: 'QemuMessage' };

/** Upper bound on one message an observer may send (a cut text is dropped, but must be framed): 1 MiB. */
const MAX_MESSAGE = 1 << 20;

export class RfbObserveFilter {
  private phase: Phase = 'version';
  private held: Buffer = Buffer.alloc(0);
  /** Total dropped, by message name. */
  readonly droppedCounts = new Map<DroppedMessage, number>();

  push(chunk: Buffer): FilterResult {
    if (this.phase === 'failed') return { pass: Buffer.alloc(0), dropped: [], error: 'the stream was refused' };
    let buffer = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    const pass: Buffer[] = [];
    const dropped: DroppedMessage[] = [];
    const fail = (error: string): FilterResult => {
      this.phase = 'failed';
      this.held = Buffer.alloc(0);
      return { pass: Buffer.concat(pass), dropped, error };
    };
    for (;;) {
      if (buffer.length === 0) break;
      if (this.phase === 'version') {
        if (buffer.length < 12) break;
        const version = buffer.subarray(0, 12).toString('latin1');
        const match = /^RFB (\d{3})\.(\d{3})\n$/.exec(version);
        if (!match) return fail('the viewer did not start with an RFB version');
        if (Number(match[1]) !== 3 || Number(match[2]) < 7) return fail(`observe mode needs RFB 3.7 or 3.8; the viewer offered ${version.trim()}`);
        pass.push(buffer.subarray(0, 12));
        buffer = buffer.subarray(12);
        this.phase = 'security';
      } else if (this.phase === 'security') {
        const type = buffer[0]!;
        if (type !== SECURITY_NONE && type !== SECURITY_VNC) return fail(`observe mode supports the None and VNC password security types, not type ${type}`);
        pass.push(buffer.subarray(0, 1));
        buffer = buffer.subarray(1);
        this.phase = type === SECURITY_VNC ? 'auth' : 'init';
      } else if (this.phase === 'auth') {
        if (buffer.length < 16) break;
        pass.push(buffer.subarray(0, 16));
        buffer = buffer.subarray(16);
        this.phase = 'init';
      } else if (this.phase === 'init') {
        // ClientInit: always shared, whatever the viewer asked.
        pass.push(Buffer.from([1]));
        buffer = buffer.subarray(1);
        this.phase = 'messages';
      } else {
        const length = messageLength(buffer);
        if (typeof length === 'string') return fail(length);
        if (length === undefined || buffer.length < length) {
          if (length !== undefined && length > MAX_MESSAGE) return fail(`a client message of ${length} bytes is more than an observer may send`);
          break;
        }
        const name = DROPPED[buffer[0]!];
        if (name) {
          dropped.push(name);
          this.droppedCounts.set(name, (this.droppedCounts.get(name) ?? 0) + 1);
        } else {
          pass.push(buffer.subarray(0, length));
        }
        buffer = buffer.subarray(length);
      }
    }
    this.held = Buffer.from(buffer);
    return { pass: pass.length === 1 ? pass[0]! : Buffer.concat(pass), dropped };
  }
}
