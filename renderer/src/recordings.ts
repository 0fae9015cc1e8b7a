import { Terminal } from '@xterm/xterm';
import type { DesktopBridge, RecordingView, VmView } from '../../preload/contract.js';
import { button, element, modal } from './dom.js';
import { TimelinePlayer } from './playback.js';
import { RfbPlayer } from './rfb-player.js';
import { TERMINAL_THEMES, type Theme, type ThemeController } from './theme.js';

type CastEvent = [number, string, string];

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

/** Plays a serial recording in xterm.js on the timeline: a seek rebuilds the terminal from the start up to that moment. */
export class CastPlayer extends TimelinePlayer {
  private readonly terminal: Terminal;
  private readonly events: CastEvent[];

  constructor(text: string, recording: RecordingView, theme: Theme) {
    const cast = parseCast(text);
    const screen = element('div', { class: 'cast-screen' });
    super(recording, screen);
    this.events = cast.events;
    this.terminal = new Terminal({ cols: cast.width, rows: cast.height, disableStdin: true, convertEol: false, theme: TERMINAL_THEMES[theme], fontSize: 13, scrollback: 2000, fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace' });
    this.setEvents(this.events.map(([at]) => at));
    this.terminal.open(screen);
    this.seek(0);
  }

  protected restart(): number {
    this.terminal.reset();
    return 0;
  }

  protected apply(from: number, to: number): void {
    let output = '';
    for (let i = from; i < to; i++) {
      const [, code, data] = this.events[i]!;
      if (code === 'o') output += data;
      else if (code === 'r') {
        if (output) this.terminal.write(output);
        output = '';
        const [cols, rows] = data.split('x').map(Number);
        if (cols && rows) this.terminal.resize(cols, rows);
      }
    }
    if (output) this.terminal.write(output);
  }

  /** Follows the app's theme while open. */
  setTheme(theme: Theme): void {
    this.terminal.options.theme = TERMINAL_THEMES[theme];
  }

  override dispose(): void {
    super.dispose();
    this.terminal.dispose();
  }
}

/** The VM's recordings, each playable and exportable as .cast. */
export async function recordingsDialog(bridge: DesktopBridge, vm: VmView, theme: ThemeController, report: (error: Error) => void): Promise<void> {
  const recordings = await bridge.api.listRecordings(vm.relayId, vm.name);
  let player: CastPlayer | RfbPlayer | undefined;
  const unfollow = theme.onChange((next) => (player instanceof CastPlayer ? player.setTheme(next) : undefined));
  const { body } = modal(`Recordings of ${vm.name}`, {
    class: 'recordings',
    onClose: () => {
      unfollow();
      player?.dispose();
    },
  });
  const stage = element('div', { class: 'recording-stage' });
  const playSerial = async (recording: RecordingView): Promise<void> => {
    const text = await bridge.api.recordingCast(vm.relayId, recording.id);
    const cast = new CastPlayer(text, recording, theme.current);
    player?.dispose();
    player = cast;
    const download = button('Export .cast', () => {
      const link = element('a', { href: URL.createObjectURL(new Blob([text], { type: 'application/x-asciicast' })), download: `${vm.name}-${recording.startedAt.replace(/[:.]/g, '-')}.cast` });
      link.click();
      URL.revokeObjectURL(link.href);
    }, { icon: 'save' });
    stage.replaceChildren(element('div', { class: 'dialog-actions' }, download), cast.root);
  };
  const playScreen = async (recording: RecordingView): Promise<void> => {
    const loading = element('p', { role: 'status' }, 'Loading the screen recording…');
    stage.replaceChildren(loading);
    const screen = await RfbPlayer.load(
      recording,
      async (name) => Uint8Array.from(atob(await bridge.api.recordingSegment(vm.relayId, recording.id, name)), (c) => c.charCodeAt(0)),
      (done, total) => (loading.textContent = `Loading the screen recording: ${done} of ${total} segments…`),
    );
    player?.dispose();
    player = screen;
    stage.replaceChildren(screen.root);
  };
  const play = async (recording: RecordingView): Promise<void> => {
    try {
      await (recording.kind === 'vnc' ? playScreen(recording) : playSerial(recording));
    } catch (error) {
      stage.replaceChildren();
      report(error as Error);
    }
  };
  const rows = recordings.map((recording) => {
    const what = recording.kind === 'vnc' ? 'screen' : 'serial';
    const when = new Date(recording.startedAt).toLocaleString();
    return element('li', { 'aria-label': `Recording of ${when} (${what})` },
      element('span', {}, when),
      element('span', { class: 'badge' }, recording.kind === 'vnc' ? 'VNC' : 'serial'),
      element('span', { class: `badge ${recording.complete ? 'ok' : 'warn'}` }, recording.complete ? 'sealed' : 'incomplete'),
      ...(recording.onHold ? [element('span', { class: 'badge warn' }, 'legal hold')] : []),
      element('small', {}, recording.participants.map((p) => `${p.role} ${p.remoteAddress}`).join(', ')),
      button('Play', () => play(recording), { icon: recording.kind === 'vnc' ? 'vnc' : 'serial', name: `Play the ${what} recording of ${when}` }),
    );
  });
  body.append(recordings.length > 0 ? element('ul', { class: 'recording-list' }, ...rows) : element('p', {}, `No recordings of ${vm.name}: the relay records sessions where its recording config or the console says so (docs/recordings.md).`), stage);
}
