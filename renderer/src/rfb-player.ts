import RFB from '@novnc/novnc';
import type { RecordingView } from '../../preload/contract.js';
import { element } from './dom.js';
import { CastTerminal, parseCast, type CastEvent } from './cast-player.js';
import { TimelinePlayer } from './playback.js';
import type { Theme } from './theme.js';

/** A VNC segment's header line (lifeline-rfb/1, docs/recordings.md#vnc-segments). */
interface SegmentHeader {
  format: string;
  start: number;
  width: number;
  height: number;
  name: string;
}

interface ScreenRecord {
  time: number;
  message: Uint8Array;
  /** A segment's full frame (its first record), with the screen size it is of. */
  keyframe?: { width: number; height: number };
}

/** Reads one segment: its header line, then records of [time float64 BE, length uint32 BE, one RFB server message]; a cut-off last record is left out. */
export function parseRfbSegment(bytes: Uint8Array): { header: SegmentHeader; records: ScreenRecord[] } {
  const newline = bytes.indexOf(0x0a);
  if (newline < 0) throw new Error('This is not a lifeline-rfb segment.');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(0, newline))) as SegmentHeader;
  if (header.format !== 'lifeline-rfb/1') throw new Error(`This screen recording is in a format this app cannot play (${header.format}).`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: ScreenRecord[] = [];
  for (let offset = newline + 1; offset + 12 <= bytes.length; ) {
    const length = view.getUint32(offset + 8);
    if (offset + 12 + length > bytes.length) break;
    records.push({ time: view.getFloat64(offset), message: bytes.subarray(offset + 12, offset + 12 + length) });
    offset += 12 + length;
  }
  if (records[0]) records[0].keyframe = { width: header.width, height: header.height };
  return { header, records };
}

function u16(value: number): number[] {
  return [(value >> 8) & 0xff, value & 0xff];
}

/** A FramebufferUpdate with one DesktopSize rectangle: noVNC resizes its screen. */
function desktopSize(width: number, height: number): Uint8Array {
  return new Uint8Array([0, 0, 0, 1, 0, 0, 0, 0, ...u16(width), ...u16(height), 0xff, 0xff, 0xff, 0x21]);
}

/**
 * A WebSocket-shaped channel for noVNC that plays the server's part from a recording: the RFB 3.8
 * handshake (no authentication, the ServerInit from the first segment's header, in the pixel
 * format the recording is in), then whatever the player delivers. What noVNC sends is ignored.
 */
class PlaybackChannel {
  readyState = 0;
  readonly protocol = 'binary';
  binaryType = 'arraybuffer';
  onmessage: ((event: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  private opened: ((event: unknown) => void) | null = null;
  private sent = 0;

  constructor(private readonly header: SegmentHeader) {}

  get onopen(): ((event: unknown) => void) | null {
    return this.opened;
  }

  /** noVNC sets this once it has attached: the "server" opens then and greets (before, nobody would hear it). */
  set onopen(listener: ((event: unknown) => void) | null) {
    this.opened = listener;
    if (!listener || this.readyState !== 0) return;
    setTimeout(() => {
      this.readyState = 1;
      this.opened?.({});
      this.deliver(new TextEncoder().encode('RFB 003.008\n'));
    }, 0);
  }

  deliver(bytes: Uint8Array): void {
    if (this.readyState === 1) this.onmessage?.({ data: bytes.slice().buffer });
  }

  /** What noVNC sends: the answer comes after its send returns (noVNC changes state after sending, not before). */
  send(): void {
    const sent = ++this.sent;
    queueMicrotask(() => this.answer(sent));
  }

  private answer(sent: number): void {
    if (sent === 1) this.deliver(new Uint8Array([1, 1])); // one security type: None
    else if (sent === 2) this.deliver(new Uint8Array([0, 0, 0, 0])); // SecurityResult: OK
    else if (sent === 3) {
      const name = new TextEncoder().encode(this.header.name);
      // ServerInit: size, then the recording's pixel format (32 bpp, depth 24, little-endian, true colour, 255 each, shifts 0/8/16).
      const format = [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0];
      this.deliver(new Uint8Array([...u16(this.header.width), ...u16(this.header.height), ...format, 0, 0, ...u16(name.length), ...name]));
    }
  }

  close(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code: 1000, reason: 'playback closed' });
  }
}

/** A serial recording of the same VM that overlaps a VNC one: played beside it on the same timeline. */
export interface SerialCompanion {
  text: string;
  /** Seconds from the VNC recording's start to the serial one's (negative: the serial one began first). */
  offset: number;
  title: string;
  theme: Theme;
}

interface TimelineEvent {
  time: number;
  record?: ScreenRecord;
  cast?: CastEvent;
}

/**
 * Plays a VNC recording in noVNC on the timeline: the screen is a noVNC view (read-only) of a
 * channel that replays the recorded server messages; a seek starts again at the full frame of the
 * segment it falls in and replays up to the moment, so it never replays more than one segment.
 * With a serial companion, the VM's serial console plays in a terminal below, on the same timeline
 * (a seek rebuilds the terminal from its start: text is cheap to replay).
 */
export class RfbPlayer extends TimelinePlayer {
  private readonly events: TimelineEvent[];
  private readonly channel: PlaybackChannel;
  private readonly rfb: RFB;
  private readonly terminal: CastTerminal | undefined;
  /** The screen size noVNC has now: a full frame of another size is preceded by a DesktopSize. */
  private size = { width: 0, height: 0 };
  private connected = false;
  /** After a seek with a companion: screen records before this index are not shown again (the full frame at it redraws the screen). */
  private screenFrom = 0;

  private constructor(segments: Array<ReturnType<typeof parseRfbSegment>>, recording: RecordingView, companion?: SerialCompanion) {
    const screen = element('div', { class: 'cast-screen vnc-playback' });
    const serialScreen = companion ? element('div', { class: 'cast-screen serial-beside', 'aria-label': companion.title }) : undefined;
    super(recording, serialScreen ? element('div', { class: 'recording-screens' }, screen, element('small', {}, companion!.title), serialScreen) : screen);
    const records: TimelineEvent[] = segments.flatMap((segment) => segment.records.map((record) => ({ time: record.time, record })));
    if (companion && serialScreen) {
      const cast = parseCast(companion.text);
      this.terminal = new CastTerminal(cast, companion.theme, serialScreen);
      const casts: TimelineEvent[] = cast.events.map((event) => ({ time: Math.max(0, event[0] + companion.offset), cast: event }));
      this.events = [...records, ...casts].sort((a, b) => a.time - b.time);
    } else {
      this.events = records;
    }
    const first = segments[0]!.header;
    this.setEvents(this.events.map((event) => event.time));
    this.channel = new PlaybackChannel(first);
    this.rfb = new RFB(screen, this.channel as unknown as WebSocket, { shared: true });
    this.rfb.viewOnly = true;
    this.rfb.scaleViewport = true;
    this.rfb.background = 'transparent';
    this.rfb.addEventListener('connect', () => {
      this.connected = true;
      this.size = { width: first.width, height: first.height };
      this.root.dataset.state = 'ready';
      this.seek(0);
    });
  }

  /** Fetches the segments (`fetchSegment` gives one's bytes), `progress` says how far; then the player. */
  static async load(recording: RecordingView, fetchSegment: (name: string) => Promise<Uint8Array>, progress: (done: number, total: number) => void, companion?: SerialCompanion): Promise<RfbPlayer> {
    if (recording.segments.length === 0) throw new Error('This screen recording has no frames yet: it is still starting, or its VM\'s screen could not be recorded.');
    let done = 0;
    const segments = await Promise.all(
      recording.segments.map(async (segment) => {
        const parsed = parseRfbSegment(await fetchSegment(segment.name));
        progress(++done, recording.segments.length);
        return parsed;
      }),
    );
    return new RfbPlayer(segments.filter((segment) => segment.records.length > 0), recording, companion);
  }

  protected restart(target: number): number {
    // The full frame at or before the target: everything from it on rebuilds the screen.
    let index = Math.max(0, target - 1);
    while (index > 0 && !this.events[index]!.record?.keyframe) index--;
    // The screen may have changed size since (a DesktopSize inside a segment): say the frame's size again.
    this.size = { width: 0, height: 0 };
    if (!this.terminal) return index;
    this.terminal.reset();
    this.screenFrom = index;
    return 0;
  }

  protected apply(from: number, to: number): void {
    if (!this.connected) return;
    const parts: Uint8Array[] = [];
    const text: CastEvent[] = [];
    for (let i = from; i < to; i++) {
      const { record, cast } = this.events[i]!;
      if (cast) text.push(cast);
      if (!record || i < this.screenFrom) continue;
      const size = record.keyframe;
      if (size && (size.width !== this.size.width || size.height !== this.size.height)) {
        parts.push(desktopSize(size.width, size.height));
        this.size = { ...size };
      }
      parts.push(record.message);
    }
    if (text.length > 0) this.terminal?.show(text);
    if (parts.length === 0) return;
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      bytes.set(part, offset);
      offset += part.length;
    }
    this.channel.deliver(bytes);
  }

  setTheme(theme: Theme): void {
    this.terminal?.setTheme(theme);
  }

  override dispose(): void {
    super.dispose();
    this.rfb.disconnect();
    this.terminal?.dispose();
  }
}
