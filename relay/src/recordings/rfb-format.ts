/**
 * `lifeline-rfb/1`, the VNC part of a recording (docs/recordings.md#vnc-segments). One file per
 * segment, `vnc-0000.rfb`, `vnc-0001.rfb`, …:
 *
 * - a JSON header line: `{"format":"lifeline-rfb/1","segment":0,"start":0,"width":720,"height":400,
 *   "name":"…","pixelFormat":{…}}` (`start`: seconds into the recording);
 * - then records, each a 12-byte head — the time (seconds into the recording, float64 big-endian)
 *   and the length (uint32 big-endian) — and one whole RFB server-to-client message (RFC 6143 §7.6)
 *   in the header's pixel format (32 bits per pixel, little-endian, red in the low byte: what noVNC
 *   asks for), encoded Raw, CopyRect or DesktopSize.
 *
 * The first record of every segment is a FramebufferUpdate with one Raw rectangle of the whole
 * screen, so a player can start at any segment: build the ServerInit from the header, feed it the
 * records, each at its time.
 */

export const RFB_FORMAT = 'lifeline-rfb/1';
export const RECORD_HEAD_BYTES = 12;

/** The pixel format the recorder asks for (RFC 6143 §7.4): 32 bpp, depth 24, little-endian, true colour, R at bit 0, G at 8, B at 16. */
export const PIXEL_FORMAT = { bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 } as const;

export interface SegmentHeader {
  format: typeof RFB_FORMAT;
  segment: number;
  start: number;
  width: number;
  height: number;
  name: string;
  pixelFormat: typeof PIXEL_FORMAT;
}

export function segmentName(index: number): string {
  return `vnc-${String(index).padStart(4, '0')}.rfb`;
}

export function encodeHeader(header: Omit<SegmentHeader, 'format' | 'pixelFormat'>): Buffer {
  return Buffer.from(`${JSON.stringify({ format: RFB_FORMAT, ...header, pixelFormat: PIXEL_FORMAT })}\n`);
}

export function encodeRecordHead(time: number, length: number): Buffer {
  const head = Buffer.allocUnsafe(RECORD_HEAD_BYTES);
  head.writeDoubleBE(time, 0);
  head.writeUInt32BE(length, 8);
  return head;
}

/** The 16 bytes of PIXEL_FORMAT as SetPixelFormat and ServerInit carry them. */
export function pixelFormatBytes(): Buffer {
  const p = PIXEL_FORMAT;
  const bytes = Buffer.alloc(16);
  bytes.writeUInt8(p.bitsPerPixel, 0);
  bytes.writeUInt8(p.depth, 1);
  bytes.writeUInt8(p.bigEndian ? 1 : 0, 2);
  bytes.writeUInt8(p.trueColour ? 1 : 0, 3);
  bytes.writeUInt16BE(p.redMax, 4);
  bytes.writeUInt16BE(p.greenMax, 6);
  bytes.writeUInt16BE(p.blueMax, 8);
  bytes.writeUInt8(p.redShift, 10);
  bytes.writeUInt8(p.greenShift, 11);
  bytes.writeUInt8(p.blueShift, 12);
  return bytes;
}

/** A segment read back: its header and records (a record cut short at the end, by a relay killed mid-write, is left out). */
export interface ParsedSegment {
  header: SegmentHeader;
  records: Array<{ time: number; message: Buffer }>;
  /** Bytes of whole records from the start of the file: where a player (or the API) stops. */
  wholeBytes: number;
}

export function parseSegment(data: Buffer): ParsedSegment {
  const newline = data.indexOf(0x0a);
  if (newline < 0) throw new Error('not a lifeline-rfb segment: no header line');
  const header = JSON.parse(data.subarray(0, newline).toString('utf8')) as SegmentHeader;
  if (header.format !== RFB_FORMAT) throw new Error(`not a ${RFB_FORMAT} segment (format ${String(header.format)})`);
  const records: ParsedSegment['records'] = [];
  let offset = newline + 1;
  while (offset + RECORD_HEAD_BYTES <= data.length) {
    const length = data.readUInt32BE(offset + 8);
    if (offset + RECORD_HEAD_BYTES + length > data.length) break;
    records.push({ time: data.readDoubleBE(offset), message: data.subarray(offset + RECORD_HEAD_BYTES, offset + RECORD_HEAD_BYTES + length) });
    offset += RECORD_HEAD_BYTES + length;
  }
  return { header, records, wholeBytes: offset };
}

/** Where the whole records of a segment end (for serving an incomplete recording); the header alone when it has none. */
export function wholeRecordsEnd(data: Buffer): number {
  try {
    return parseSegment(data).wholeBytes;
  } catch {
    return 0;
  }
}
