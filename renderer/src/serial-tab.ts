import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { SerializeAddon } from '@xterm/addon-serialize';
import type { ByteStream, DesktopBridge, TabView } from '../../preload/contract.js';
import { button } from './dom.js';

/** A serial console tab: xterm.js on the tab's byte stream. */
export class SerialTab {
  readonly element = document.createElement('div');
  private readonly terminal = new Terminal({ fontSize: 14, scrollback: 5000, convertEol: false });
  private readonly fit = new FitAddon();
  private readonly search = new SearchAddon();
  private readonly serialize = new SerializeAddon();
  private stream: ByteStream | undefined;
  private readonly resizeObserver = new ResizeObserver(() => this.refit());

  constructor(
    private readonly bridge: DesktopBridge,
    private tab: TabView,
  ) {
    this.element.className = 'serial-tab';
    const toolbar = document.createElement('div');
    toolbar.className = 'toolbar';
    const searchBox = document.createElement('input');
    searchBox.type = 'search';
    searchBox.placeholder = 'Search output';
    searchBox.setAttribute('aria-label', 'Search terminal output');
    searchBox.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') this.search.findNext(searchBox.value);
    });
    toolbar.append(
      button('Smaller text', () => this.fontSize(-1)),
      button('Larger text', () => this.fontSize(1)),
      button('Copy selection', () => void navigator.clipboard?.writeText(this.terminal.getSelection())),
      button('Paste', async () => this.send(await navigator.clipboard.readText())),
      button('Save log', () => this.saveLog()),
      searchBox,
    );
    const screen = document.createElement('div');
    screen.className = 'terminal';
    this.element.append(toolbar, screen);
    this.terminal.loadAddon(this.fit);
    this.terminal.loadAddon(this.search);
    this.terminal.loadAddon(this.serialize);
    this.terminal.open(screen);
    this.terminal.onData((data) => this.send(data));
    this.terminal.onResize(({ cols, rows }) => void this.bridge.api.resizeTerminal(this.tab.id, cols, rows).catch(() => undefined));
    this.resizeObserver.observe(screen);
  }

  private send(data: string): void {
    if (this.stream?.readyState === 1) this.stream.send(new TextEncoder().encode(data));
  }

  private fontSize(delta: number): void {
    this.terminal.options.fontSize = Math.max(8, Math.min(32, (this.terminal.options.fontSize ?? 14) + delta));
    this.refit();
  }

  private refit(): void {
    if (this.element.isConnected && this.element.offsetParent !== null) this.fit.fit();
  }

  private saveLog(): void {
    const blob = new Blob([this.serialize.serialize()], { type: 'text/plain' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = `${this.tab.vm}-serial-${new Date().toISOString().replace(/[:.]/g, '-')}.log`;
    link.click();
    URL.revokeObjectURL(link.href);
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
    requestAnimationFrame(() => this.refit());
  }

  dispose(): void {
    this.resizeObserver.disconnect();
    this.stream?.close();
    this.terminal.dispose();
  }
}
