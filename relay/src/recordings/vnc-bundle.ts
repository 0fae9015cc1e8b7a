import { RecordingBundle, Segment, type RecordingManifest, type SegmentState } from './recording-bundle.js';
import { encodeHeader, encodeRecordHead, segmentName } from './rfb-format.js';

/** The screen as the recorder has it, for the full frame a segment starts with. */
export interface ScreenState {
  width: number;
  height: number;
  name: string;
  keyframe(): Buffer;
}

/**
 * How a message stands: `before` the recorder has seen the whole screen (not recordable yet),
 * `full` when it completed the whole screen (the first update, or the first after a size change
 * or a reconnection: a segment starts there), `update` otherwise.
 */
export type MessageKind = 'before' | 'full' | 'update';

/**
 * A VNC recording: segments `vnc-0000.rfb`, … in the lifeline-rfb/1 format (rfb-format.ts), a new
 * one every `segmentSeconds` and at every size change, each starting with a full frame, so a
 * player seeks by starting at a segment. Markers are in the manifest only.
 */
export class VncBundle extends RecordingBundle {
  private readonly ended: SegmentState[] = [];
  private current: { segment: Segment; start: number; last: number } | undefined;

  constructor(
    root: string,
    manifest: RecordingManifest,
    private readonly segmentSeconds: number,
  ) {
    super(root, manifest);
    this.writeManifest();
  }

  record(message: Buffer, kind: MessageKind, screen: ScreenState): void {
    if (this.sealed || kind === 'before') return;
    const time = this.now();
    if (!this.current || kind === 'full' || time - this.current.start >= this.segmentSeconds) {
      // The full frame is the screen after this message: the message itself is in it.
      this.startSegment(time, screen);
      return;
    }
    this.current.segment.write(encodeRecordHead(time, message.length));
    this.current.segment.write(message);
    this.current.last = time;
  }

  private startSegment(time: number, screen: ScreenState): void {
    this.endSegment(time);
    if (!this.manifest.screen) this.manifest.screen = { width: screen.width, height: screen.height, name: screen.name };
    const index = this.ended.length;
    const segment = new Segment(this.dir, segmentName(index));
    segment.write(encodeHeader({ segment: index, start: time, width: screen.width, height: screen.height, name: screen.name }));
    const keyframe = screen.keyframe();
    segment.write(encodeRecordHead(time, keyframe.length));
    segment.write(keyframe);
    this.current = { segment, start: time, last: time };
    // A new segment is a new file the manifest must list (and hash) from the start.
    this.writeManifest();
  }

  private endSegment(time: number): void {
    if (!this.current) return;
    this.current.segment.close();
    this.ended.push({ ...this.current.segment.state(), start: this.current.start, end: Math.max(this.current.last, time) });
    this.current = undefined;
  }

  protected segmentStates(): SegmentState[] {
    return this.current ? [...this.ended, { ...this.current.segment.state(), start: this.current.start }] : [...this.ended];
  }

  protected closeSegments(): void {
    this.endSegment(this.now());
  }
}
