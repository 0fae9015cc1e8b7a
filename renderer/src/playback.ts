import type { RecordingView } from '../../preload/contract.js';
import { button, checkbox, element } from './dom.js';
import { icon } from './icons.js';

/** Gaps longer than this are shortened to it when idle time is skipped. */
const IDLE_LIMIT_S = 1;
const SPEEDS = [0.5, 1, 2, 4, 8, 16];

export function clock(seconds: number): string {
  const whole = Math.max(0, Math.floor(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
}

/**
 * One timeline over a recording's events, whatever shows them (a terminal, a VNC screen): play and
 * pause, 0.5–16× speed, idle time skipped (gaps over 1 s shortened), seeking by the slider or a
 * marker, the markers listed. A player says where a seek restarts (`restart`) and shows a run of
 * events (`apply`). `data-position` on the root is the recording time shown, for tests and tools.
 */
export abstract class TimelinePlayer {
  readonly root = element('div', { class: 'cast-player' });
  /** The events' recording times, in order (set by `setEvents`). */
  protected at: number[] = [];
  /** Display times: the recording times, or with long gaps cut to IDLE_LIMIT_S. */
  private readonly times: number[] = [];
  private readonly slider = element('input', { type: 'range', min: '0', step: '0.01', value: '0', 'aria-label': 'Position in the recording' });
  private readonly time = element('span', { class: 'cast-time', 'aria-live': 'off' });
  private readonly playButton: HTMLButtonElement;
  private position = 0;
  private next = 0;
  private playing = false;
  private speed = 1;
  private skipIdle = true;
  private last = 0;
  private frame = 0;

  constructor(recording: RecordingView, screen: HTMLElement) {
    this.playButton = button('Play', () => this.toggle(), { icon: 'play', name: 'Play or pause the recording' });
    const speed = element('select', { 'aria-label': 'Playback speed' }, ...SPEEDS.map((s) => element('option', { value: String(s), ...(s === 1 && { selected: '' }) }, `${s}×`)));
    speed.addEventListener('change', () => (this.speed = Number(speed.value)));
    this.slider.addEventListener('input', () => this.seek(Number(this.slider.value)));
    const markers = element('ol', { class: 'cast-markers', 'aria-label': 'Markers' },
      ...recording.markers.map((marker) => element('li', {}, button(`${clock(marker.time)} ${marker.label}`, () => this.seek(this.displayTime(marker.time)), { variant: 'ghost', name: `Go to ${marker.label}` }))));
    this.root.append(
      element('div', { class: 'cast-controls', role: 'group', 'aria-label': 'Playback' }, this.playButton, this.slider, this.time, speed,
        checkbox('Skip idle time', true, (on) => {
          const at = this.recordingTime(this.position);
          this.skipIdle = on;
          this.retime();
          this.seek(this.displayTime(at));
        })),
      screen,
      markers,
    );
  }

  protected setEvents(at: number[]): void {
    this.at = at;
    this.retime();
  }

  /** Where to start showing events again to show event `target` (and those before it) after a seek; the player resets what it shows. */
  protected abstract restart(target: number): number;
  /** Shows events [from, to). */
  protected abstract apply(from: number, to: number): void;

  private retime(): void {
    this.times.length = 0;
    let shift = 0;
    let previous = 0;
    for (const at of this.at) {
      const gap = at - previous;
      if (this.skipIdle && gap > IDLE_LIMIT_S) shift += gap - IDLE_LIMIT_S;
      previous = at;
      this.times.push(at - shift);
    }
    this.slider.max = String(this.duration);
  }

  get duration(): number {
    return this.times.at(-1) ?? 0;
  }

  private displayTime(recordingTime: number): number {
    const index = this.at.findIndex((at) => at >= recordingTime);
    return index < 0 ? this.duration : this.times[index]!;
  }

  private recordingTime(displayTime: number): number {
    const index = this.times.findIndex((at) => at >= displayTime);
    return index < 0 ? (this.at.at(-1) ?? 0) : this.at[index]!;
  }

  /** Shows the recording as it was at `displayTime`. */
  seek(displayTime: number): void {
    this.position = Math.min(Math.max(0, displayTime), this.duration);
    let target = 0;
    while (target < this.times.length && this.times[target]! <= this.position) target++;
    this.next = this.restart(target);
    this.advance();
  }

  private advance(): void {
    let end = this.next;
    while (end < this.times.length && this.times[end]! <= this.position) end++;
    if (end > this.next) this.apply(this.next, end);
    this.next = end;
    this.slider.value = String(this.position);
    // Recording time (what the markers say), whatever idle time playback skips.
    const shown = this.recordingTime(this.position);
    this.time.textContent = `${clock(shown)} / ${clock(this.at.at(-1) ?? 0)}`;
    this.root.dataset.position = String(end > 0 ? this.at[end - 1] : 0);
  }

  toggle(): void {
    this.playing = !this.playing;
    this.playButton.querySelector('.label')!.textContent = this.playing ? 'Pause' : 'Play';
    this.playButton.querySelector('svg')?.replaceWith(icon(this.playing ? 'pause' : 'play'));
    if (!this.playing) return;
    if (this.position >= this.duration) this.seek(0);
    this.last = performance.now();
    const step = (now: number): void => {
      if (!this.playing) return;
      this.position = Math.min(this.duration, this.position + ((now - this.last) / 1000) * this.speed);
      this.last = now;
      this.advance();
      if (this.position >= this.duration) this.toggle();
      else this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  dispose(): void {
    this.playing = false;
    cancelAnimationFrame(this.frame);
  }
}
