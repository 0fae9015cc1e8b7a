import { Terminal } from '@xterm/xterm';
import type { DesktopBridge, RecordingView, VmView } from '../../preload/contract.js';
import { button, checkbox, element, modal } from './dom.js';
import { icon } from './icons.js';
import { TERMINAL_THEMES, type Theme, type ThemeController } from './theme.js';

type CastEvent = [number, string, string];

/** Gaps longer than this are shortened to it when idle time is skipped. */
const IDLE_LIMIT_S = 1;
const SPEEDS = [0.5, 1, 2, 4, 8, 16];

function clock(seconds: number): string {
  const whole = Math.max(0, Math.floor(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
}

/** Parses an asciicast v2 text: its header and events (a line that does not parse ends it, as an incomplete recording may). */
export function parseCast(text: string): { width: number; height: number; events: CastEvent[] } {
  const [head, ...lines] = text.split('\n');
  const header = JSON.parse(head ?? '{}') as { version?: number; width?: number; height?: number };
  if (header.version !== 2) throw new Error('This is not an asciicast v2 recording.');
  const events: CastEvent[] = [];
  for (const line of lines) {
    if (!line) continue;
    try {
      events.push(JSON.parse(line) as CastEvent);
    } catch {
      break;
    }
  }
  return { width: header.width ?? 80, height: header.height ?? 24, events };
}

/**
 * Plays a serial recording in xterm.js on one timeline: play and pause, 0.5–16× speed, idle time
 * skipped (gaps over 1 s shortened), seeking by the slider or a marker (the terminal is rebuilt
 * from the start up to that moment), and the markers listed.
 */
export class CastPlayer {
  readonly root = element('div', { class: 'cast-player' });
  private readonly terminal: Terminal;
  private readonly times: number[] = [];
  private readonly events: CastEvent[];
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

  constructor(text: string, recording: RecordingView, theme: Theme) {
    const cast = parseCast(text);
    this.events = cast.events;
    this.terminal = new Terminal({ cols: cast.width, rows: cast.height, disableStdin: true, convertEol: false, theme: TERMINAL_THEMES[theme], fontSize: 13, scrollback: 2000, fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace' });
    this.retime();
    this.playButton = button('Play', () => this.toggle(), { icon: 'play', name: 'Play or pause the recording' });
    const speed = element('select', { 'aria-label': 'Playback speed' }, ...SPEEDS.map((s) => element('option', { value: String(s), ...(s === 1 && { selected: '' }) }, `${s}×`)));
    speed.addEventListener('change', () => (this.speed = Number(speed.value)));
    this.slider.addEventListener('input', () => this.seek(Number(this.slider.value)));
    const markers = element('ol', { class: 'cast-markers', 'aria-label': 'Markers' },
      ...recording.markers.map((marker) => element('li', {}, button(`${clock(marker.time)} ${marker.label}`, () => this.seek(this.displayTime(marker.time)), { variant: 'ghost', name: `Go to ${marker.label}` }))));
    const screen = element('div', { class: 'cast-screen' });
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
    this.terminal.open(screen);
    this.seek(0);
  }

  /** Display times: the events' own, or with long gaps cut to IDLE_LIMIT_S. */
  private retime(): void {
    this.times.length = 0;
    let shift = 0;
    let previous = 0;
    for (const [at] of this.events) {
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
    const index = this.events.findIndex(([at]) => at >= recordingTime);
    return index < 0 ? this.duration : this.times[index]!;
  }

  private recordingTime(displayTime: number): number {
    const index = this.times.findIndex((at) => at >= displayTime);
    return index < 0 ? (this.events.at(-1)?.[0] ?? 0) : this.events[index]![0];
  }

  /** Rebuilds the screen as it was at `displayTime`. */
  seek(displayTime: number): void {
    this.terminal.reset();
    this.next = 0;
    this.position = Math.min(Math.max(0, displayTime), this.duration);
    this.advance();
  }

  private advance(): void {
    let output = '';
    while (this.next < this.events.length && this.times[this.next]! <= this.position) {
      const [, code, data] = this.events[this.next]!;
      if (code === 'o') output += data;
      else if (code === 'r') {
        const [cols, rows] = data.split('x').map(Number);
        if (cols && rows) this.terminal.resize(cols, rows);
      }
      this.next++;
    }
    if (output) this.terminal.write(output);
    this.slider.value = String(this.position);
    // Recording time (what the markers say), whatever idle time playback skips.
    this.time.textContent = `${clock(this.recordingTime(this.position))} / ${clock(this.events.at(-1)?.[0] ?? 0)}`;
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

  /** Follows the app's theme while open. */
  setTheme(theme: Theme): void {
    this.terminal.options.theme = TERMINAL_THEMES[theme];
  }

  dispose(): void {
    this.playing = false;
    cancelAnimationFrame(this.frame);
    this.terminal.dispose();
  }
}

/** The VM's recordings, each playable and exportable as .cast. */
export async function recordingsDialog(bridge: DesktopBridge, vm: VmView, theme: ThemeController, report: (error: Error) => void): Promise<void> {
  const recordings = await bridge.api.listRecordings(vm.relayId, vm.name);
  let player: CastPlayer | undefined;
  const unfollow = theme.onChange((next) => player?.setTheme(next));
  const { body } = modal(`Recordings of ${vm.name}`, {
    class: 'recordings',
    onClose: () => {
      unfollow();
      player?.dispose();
    },
  });
  const stage = element('div', { class: 'recording-stage' });
  const play = async (recording: RecordingView): Promise<void> => {
    try {
      const text = await bridge.api.recordingCast(vm.relayId, recording.id);
      player?.dispose();
      player = new CastPlayer(text, recording, theme.current);
      const download = button('Export .cast', () => {
        const link = element('a', { href: URL.createObjectURL(new Blob([text], { type: 'application/x-asciicast' })), download: `${vm.name}-${recording.startedAt.replace(/[:.]/g, '-')}.cast` });
        link.click();
        URL.revokeObjectURL(link.href);
      }, { icon: 'save' });
      stage.replaceChildren(element('div', { class: 'dialog-actions' }, download), player.root);
    } catch (error) {
      report(error as Error);
    }
  };
  const rows = recordings.map((recording) =>
    element('li', { 'aria-label': `Recording of ${new Date(recording.startedAt).toLocaleString()}` },
      element('span', {}, new Date(recording.startedAt).toLocaleString()),
      element('span', { class: `badge ${recording.complete ? 'ok' : 'warn'}` }, recording.complete ? 'sealed' : 'incomplete'),
      ...(recording.onHold ? [element('span', { class: 'badge warn' }, 'legal hold')] : []),
      element('small', {}, recording.participants.map((p) => `${p.role} ${p.remoteAddress}`).join(', ')),
      button('Play', () => play(recording), { icon: 'serial', name: `Play the recording of ${new Date(recording.startedAt).toLocaleString()}` }),
    ),
  );
  body.append(recordings.length > 0 ? element('ul', { class: 'recording-list' }, ...rows) : element('p', {}, `No recordings of ${vm.name}: the relay records sessions where its recording config or the console says so (docs/recordings.md).`), stage);
}
