import { Terminal } from '@xterm/xterm';
import type { RecordingView } from '../../preload/contract.js';
import { element } from './dom.js';
import { TimelinePlayer } from './playback.js';
import { TERMINAL_THEMES, type Theme } from './theme.js';

export type CastEvent = [number, string, string];

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

/** An xterm.js terminal that shows a cast's events: output written, resizes applied. */
export class CastTerminal {
  private readonly terminal: Terminal;

  constructor(size: { width: number; height: number }, theme: Theme, screen: HTMLElement) {
    this.terminal = new Terminal({ cols: size.width, rows: size.height, disableStdin: true, convertEol: false, theme: TERMINAL_THEMES[theme], fontSize: 13, scrollback: 2000, fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace' });
    this.terminal.open(screen);
  }

  reset(): void {
    this.terminal.reset();
  }

  show(events: Iterable<CastEvent>): void {
    let output = '';
    for (const [, code, data] of events) {
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

  setTheme(theme: Theme): void {
    this.terminal.options.theme = TERMINAL_THEMES[theme];
  }

  dispose(): void {
    this.terminal.dispose();
  }
}

/** Plays a serial recording in xterm.js on the timeline: a seek rebuilds the terminal from the start up to that moment. */
export class CastPlayer extends TimelinePlayer {
  private readonly terminal: CastTerminal;
  private readonly events: CastEvent[];

  constructor(text: string, recording: RecordingView, theme: Theme) {
    const cast = parseCast(text);
    const screen = element('div', { class: 'cast-screen' });
    super(recording, screen);
    this.events = cast.events;
    this.terminal = new CastTerminal(cast, theme, screen);
    this.setEvents(this.events.map(([at]) => at));
    this.seek(0);
  }

  protected restart(): number {
    this.terminal.reset();
    return 0;
  }

  protected apply(from: number, to: number): void {
    this.terminal.show(this.events.slice(from, to));
  }

  /** Follows the app's theme while open. */
  setTheme(theme: Theme): void {
    this.terminal.setTheme(theme);
  }

  override dispose(): void {
    super.dispose();
    this.terminal.dispose();
  }
}
