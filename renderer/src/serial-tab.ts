import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon, type ISearchOptions } from '@xterm/addon-search';
import { SerializeAddon } from '@xterm/addon-serialize';
import type { ByteStream, DesktopBridge, TabView } from '../../preload/contract.js';
import { button, element } from './dom.js';
import { icon } from './icons.js';
import { TERMINAL_THEMES, type Theme } from './theme.js';

const MATCH_COLOURS = { light: { match: '#fff2a8', active: '#ffb86b' }, dark: { match: '#5c4d00', active: '#a15c00' } };

/** A serial console tab: xterm.js on the tab's byte stream, with find, font size, copy/paste, log and clear. */
export class SerialTab {
  /** The tab's content (toolbar, banner, screen: the workspace fills it). */
  readonly root = element('div', { class: 'serial-tab' });
  readonly screen = element('div', { class: 'terminal-view' });
  readonly tools: HTMLElement[];
  private readonly terminal: Terminal;
  private readonly fit = new FitAddon();
  private readonly search = new SearchAddon();
  private readonly serialize = new SerializeAddon();
  private readonly findBox = element('input', { type: 'search', placeholder: 'Find in output', 'aria-label': 'Search terminal output' });
  private readonly matchCount = element('span', { class: 'match-count', 'aria-live': 'polite' });
  private stream: ByteStream | undefined;
  private readonly resizeObserver = new ResizeObserver(() => this.refit());
  private theme: Theme;

  constructor(
    private readonly bridge: DesktopBridge,
    private tab: TabView,
    theme: Theme,
    private readonly report: (error: Error) => void = () => undefined,
  ) {
    this.theme = theme;
    this.terminal = new Terminal({ fontSize: 14, scrollback: 5000, convertEol: false, allowProposedApi: true, theme: TERMINAL_THEMES[theme], fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace' });
    this.findBox.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this.find(event.shiftKey ? -1 : 1);
      } else if (event.key === 'Escape') {
        this.findBox.value = '';
        this.search.clearDecorations();
        this.matchCount.textContent = '';
        this.terminal.focus();
      }
    });
    this.findBox.addEventListener('input', () => this.find(1, true));
    this.search.onDidChangeResults(({ resultIndex, resultCount }) => {
      this.matchCount.textContent = !this.findBox.value ? '' : resultCount === 0 ? 'No matches' : `${resultIndex >= 0 ? resultIndex + 1 : '?'} of ${resultCount}`;
    });
    this.tools = [
      ...(tab.serialBreak ? [this.breakMenu()] : []),
      element('div', { class: 'group', role: 'group', 'aria-label': 'Text size' },
        button('Smaller text', () => this.fontSize(-1), { icon: 'smaller', iconOnly: true }),
        button('Larger text', () => this.fontSize(1), { icon: 'larger', iconOnly: true }),
      ),
      element('div', { class: 'group find', role: 'search', 'aria-label': 'Find in output' },
        this.findBox,
        this.matchCount,
        button('Previous match', () => this.find(-1), { icon: 'previous', iconOnly: true, title: 'Previous match (Shift+Enter)' }),
        button('Next match', () => this.find(1), { icon: 'next', iconOnly: true, title: 'Next match (Enter)' }),
      ),
      element('div', { class: 'group', role: 'group', 'aria-label': 'Output' },
        button('Copy selection', () => void navigator.clipboard?.writeText(this.terminal.getSelection()), { icon: 'copy', iconOnly: true }),
        button('Paste', async () => this.send(await navigator.clipboard.readText()), { icon: 'paste', iconOnly: true }),
        button('Save log', () => this.saveLog(), { icon: 'save', iconOnly: true, title: 'Save the output as a text file' }),
        button('Clear terminal', () => this.terminal.clear(), { icon: 'clear', iconOnly: true, title: 'Clear the terminal (the VM is not affected)' }),
      ),
    ];
    this.terminal.loadAddon(this.fit);
    this.terminal.loadAddon(this.search);
    this.terminal.loadAddon(this.serialize);
    this.terminal.open(this.screen);
    this.terminal.onData((data) => this.send(data));
    this.terminal.onResize(({ cols, rows }) => void this.bridge.api.resizeTerminal(this.tab.id, cols, rows).catch(() => undefined));
    this.resizeObserver.observe(this.screen);
  }

  /** Send break, and break + a SysRq key (Linux guests: the key after a break is a SysRq command). */
  private breakMenu(): HTMLElement {
    const keys: Array<[string, string]> = [['h', 'help'], ['w', 'show blocked tasks'], ['m', 'show memory'], ['s', 'sync disks'], ['u', 'remount read-only'], ['b', 'reboot now'], ['c', 'crash (dump)']];
    const send = (key?: string): void => {
      menu.open = false;
      void this.bridge.api.sendBreak(this.tab.id, key).then(() => this.terminal.focus(), (error: Error) => this.report(error));
    };
    const menu = element('details', { class: 'menu' },
      element('summary', { 'aria-label': 'Break and SysRq', title: 'Serial break and SysRq' }, icon('zap'), element('span', { class: 'label' }, 'Break')),
      element('div', { class: 'menu-items', role: 'group', 'aria-label': 'Break and SysRq' },
        button('Send break', () => send(), { title: 'A serial break alone (what OpenSSH ~B sends)' }),
        ...keys.map(([key, what]) => button(`SysRq ${key}: ${what}`, () => send(key), { name: `SysRq ${key}`, title: `Break, then "${key}": ${what}` })),
      ),
    );
    return element('div', { class: 'group', role: 'group', 'aria-label': 'Break' }, menu);
  }

  private send(data: string): void {
    if (this.stream?.readyState === 1) this.stream.send(new TextEncoder().encode(data));
  }

  private find(direction: 1 | -1, incremental = false): void {
    const term = this.findBox.value;
    if (!term) {
      this.search.clearDecorations();
      this.matchCount.textContent = '';
      return;
    }
    const colours = MATCH_COLOURS[this.theme];
    const options: ISearchOptions = {
      incremental,
      decorations: { matchBackground: colours.match, matchOverviewRuler: colours.match, activeMatchBackground: colours.active, activeMatchColorOverviewRuler: colours.active },
    };
    if (direction === 1) this.search.findNext(term, options);
    else this.search.findPrevious(term, options);
  }

  private fontSize(delta: number): void {
    this.terminal.options.fontSize = Math.max(8, Math.min(32, (this.terminal.options.fontSize ?? 14) + delta));
    this.refit();
  }

  private refit(): void {
    if (this.screen.isConnected && this.screen.offsetParent !== null) this.fit.fit();
  }

  private saveLog(): void {
    const blob = new Blob([this.serialize.serialize()], { type: 'text/plain' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = `${this.tab.vm}-serial-${new Date().toISOString().replace(/[:.]/g, '-')}.log`;
    link.click();
    URL.revokeObjectURL(link.href);
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
    this.terminal.options.theme = TERMINAL_THEMES[theme];
    if (this.findBox.value) this.find(1, true); // the match colours follow the theme
  }

  /** Opens the find box (Ctrl+F in the tab). */
  focusFind(): void {
    this.findBox.focus();
    this.findBox.select();
  }

  /** Attaches to the tab's (new) stream; called on open and after every reconnect. */
  async connect(tab: TabView): Promise<void> {
    this.tab = tab;
    this.stream?.close();
    const stream = await this.bridge.openStream(tab.streamId);
    this.stream = stream;
    stream.onmessage = (event) => this.terminal.write(new Uint8Array(event.data));
    stream.onopen = () => {
      this.refit();
      void this.bridge.api.resizeTerminal(tab.id, this.terminal.cols, this.terminal.rows).catch(() => undefined);
      this.terminal.focus();
    };
  }

  show(): void {
    requestAnimationFrame(() => {
      this.refit();
      this.terminal.focus();
    });
  }

  focus(): void {
    this.terminal.focus();
  }

  dispose(): void {
    this.resizeObserver.disconnect();
    this.stream?.close();
    this.terminal.dispose();
  }
}
