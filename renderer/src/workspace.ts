import type { DesktopBridge, TabView } from '../../preload/contract.js';
import { button, element } from './dom.js';
import { elapsed, EXPIRY_WARNING_MS, timeLeft } from './format.js';
import { icon } from './icons.js';
import type { Notices } from './notices.js';
import { EarlyNotices, SharingStrip, type SharingNotice } from './sharing-strip.js';
import { SerialTab } from './serial-tab.js';
import type { Theme, ThemeController } from './theme.js';
import { VncTab } from './vnc-tab.js';

export interface OpenTab {
  view: TabView;
  tab: HTMLButtonElement;
  item: HTMLElement;
  panel: HTMLElement;
  banner: HTMLElement;
  keyLabel: HTMLElement;
  content: SerialTab | VncTab;
  /** Observing or in control, recorded, the relay's sharing notices and the control buttons. */
  sharing: SharingStrip;
  /** When the current session started; undefined once it closed. */
  connectedAt: number | undefined;
  closedReason?: string;
}

/**
 * The main area: the tab strip (type icon, title, close button), one panel per console with its
 * toolbar, and the status bar (relay, VM, session duration, console expiry with Renew).
 */
export class Workspace {
  readonly element: HTMLElement;
  readonly statusBar = element('footer', { class: 'statusbar', 'aria-label': 'Status bar' });
  private readonly tabList = element('div', { role: 'tablist', 'aria-label': 'Consoles', class: 'tabstrip' });
  private readonly panels = element('div', { class: 'panels' });
  private readonly welcome = element('div', { class: 'welcome' },
    icon('app', 40),
    element('h2', {}, 'No console open'),
    element('p', {}, 'Open a serial or VNC console from the list on the left. Each VM gets a console key of its own, kept in the keychain.'),
    element('p', { class: 'hint' }, 'Ctrl+Shift+F searches VMs · Ctrl+? lists every shortcut'),
  );
  private readonly tabs = new Map<string, OpenTab>();
  private readonly early = new EarlyNotices();
  private active: OpenTab | undefined;

  constructor(
    private readonly bridge: DesktopBridge,
    private readonly notices: Notices,
    private readonly theme: ThemeController,
    private readonly onChange: () => Promise<void>,
  ) {
    this.element = element('main', { class: 'workspace', 'aria-label': 'Open consoles' }, this.tabList, this.panels);
    this.panels.append(this.welcome);
    this.tabList.addEventListener('keydown', (event) => this.onTabKey(event));
    theme.onChange((value: Theme) => {
      for (const tab of this.tabs.values()) tab.content.setTheme(value);
    });
    this.renderStatus();
  }

  /** The tab opened for that console, as controller (default) or observer. */
  find(relayId: string, vm: string, kind: string, role: 'controller' | 'observer' = 'controller'): OpenTab | undefined {
    return [...this.tabs.values()].find((t) => t.view.vm === vm && t.view.relayId === relayId && t.view.kind === kind && (t.view.role ?? 'controller') === role);
  }

  /** A relay notice for a tab: its sharing strip shows it (role, recorded, a request). */
  notice(tabId: string, event: SharingNotice): void {
    const tab = this.tabs.get(tabId);
    if (tab) tab.sharing.notice(event.text, event);
    else this.early.keep(tabId, event);
  }

  get activeTab(): OpenTab | undefined {
    return this.active;
  }

  /** Adds a tab for a console main has opened, selects it and connects it. */
  async add(view: TabView): Promise<void> {
    const content = view.kind === 'serial' ? new SerialTab(this.bridge, view, this.theme.current, (error) => this.notices.error(error.message)) : new VncTab(this.bridge);
    const banner = element('div', { class: 'banner', role: 'alert' });
    banner.hidden = true;
    const keyLabel = element('span', { class: 'tab-key', title: 'The key this tab connects with' }, icon('key', 14), element('span', {}, `key ${view.keyFingerprint}`));
    const panelId = `panel-${view.id}`;
    const tabButton = element('button', { role: 'tab', 'aria-label': view.title, 'aria-controls': panelId, id: `tab-${view.id}`, type: 'button', class: 'tab', title: view.title },
      icon(view.kind === 'serial' ? 'serial' : 'vnc', 15), element('span', { class: 'title' }, view.title), element('span', { class: 'state-dot', 'aria-hidden': 'true' }));
    const tab: OpenTab = {
      view,
      content,
      sharing: new SharingStrip(this.bridge, view, (error) => this.notices.error(error.message)),
      banner,
      keyLabel,
      tab: tabButton,
      item: element('div', { class: 'tab-item', role: 'presentation' }),
      panel: element('div', { role: 'tabpanel', 'aria-label': view.title, id: panelId, class: 'panel' }),
      connectedAt: Date.now(),
    };
    tab.item.append(tabButton, button(`Close ${view.title}`, () => this.close(tab), { icon: 'close', iconOnly: true, variant: 'ghost', title: 'Close tab (Ctrl+Shift+X)' }));
    content.root.append(
      element('div', { class: 'toolbar', role: 'toolbar', 'aria-label': `${view.title} tools` },
        element('div', { class: 'group', role: 'group', 'aria-label': 'Session' },
          button('Reconnect', () => this.reconnect(tab, false), { icon: 'reconnect', title: 'Reconnect with the same key' }),
          button('Reconnect with new key', () => this.reconnect(tab, true), { icon: 'key', title: 'Put a new key on the console and reconnect with it (the old key stops working)' }),
        ),
        ...content.tools,
        element('span', { class: 'spacer' }),
        keyLabel,
      ),
      tab.sharing.root,
      banner,
      content.screen,
    );
    tab.panel.append(content.root);
    tabButton.addEventListener('click', () => this.select(tab));
    this.tabList.append(tab.item);
    this.panels.append(tab.panel);
    this.tabs.set(view.id, tab);
    for (const early of this.early.take(view.id)) tab.sharing.notice(early.text, early);
    this.select(tab);
    await content.connect(view);
  }

  select(tab: OpenTab): void {
    this.active = tab;
    for (const other of this.tabs.values()) {
      const selected = other === tab;
      other.panel.hidden = !selected;
      other.tab.setAttribute('aria-selected', String(selected));
      other.tab.tabIndex = selected ? 0 : -1;
      other.item.classList.toggle('selected', selected);
    }
    this.welcome.hidden = true;
    tab.content.show();
    this.renderStatus();
  }

  /** Next (1) or previous (-1) tab, wrapping around. */
  cycle(direction: 1 | -1): void {
    const list = [...this.tabs.values()];
    if (list.length === 0) return;
    const index = this.active ? list.indexOf(this.active) : -1;
    const next = list[(index + direction + list.length) % list.length]!;
    this.select(next);
    next.tab.focus();
    next.content.focus();
  }

  private onTabKey(event: KeyboardEvent): void {
    const list = [...this.tabs.values()];
    const index = list.findIndex((t) => t.tab === document.activeElement);
    if (index < 0) return;
    let target: OpenTab | undefined;
    if (event.key === 'ArrowRight') target = list[(index + 1) % list.length];
    else if (event.key === 'ArrowLeft') target = list[(index - 1 + list.length) % list.length];
    else if (event.key === 'Home') target = list[0];
    else if (event.key === 'End') target = list.at(-1);
    else if (event.key === 'Delete') {
      event.preventDefault();
      void this.close(list[index]!);
      return;
    }
    if (!target) return;
    event.preventDefault();
    this.select(target);
    target.tab.focus();
  }

  closeActive(): void {
    if (this.active) void this.close(this.active);
  }

  async close(tab: OpenTab): Promise<void> {
    try {
      await this.bridge.api.closeTab(tab.view.id);
    } catch (error) {
      this.notices.error((error as Error).message);
    }
    const list = [...this.tabs.values()];
    const index = list.indexOf(tab);
    tab.content.dispose();
    tab.panel.remove();
    tab.item.remove();
    this.tabs.delete(tab.view.id);
    if (this.active === tab) this.active = undefined;
    const next = list.filter((t) => t !== tab)[Math.max(0, index - 1)];
    if (next) {
      this.select(next);
      next.tab.focus();
    } else {
      this.welcome.hidden = false;
      this.renderStatus();
    }
  }

  /** Main closed a tab's session (console disabled, key replaced, relay gone…): say why, offer to reconnect. */
  sessionClosed(tabId: string, reason: string): void {
    const tab = this.tabs.get(tabId);
    if (!tab) return;
    tab.connectedAt = undefined;
    tab.closedReason = reason;
    tab.item.classList.add('closed');
    tab.banner.hidden = false;
    tab.banner.replaceChildren(icon('warning'), element('span', {}, `Session closed: ${reason}. `), button('Reconnect', () => this.reconnect(tab, false), { name: 'Reconnect', variant: 'primary' }));
    this.renderStatus();
  }

  renewed(relayId: string, vm: string, expiresAt: string): void {
    for (const tab of this.tabs.values()) if (tab.view.vm === vm && tab.view.relayId === relayId) tab.view.expiresAt = expiresAt;
    this.renderStatus();
  }

  private async reconnect(tab: OpenTab, newKey: boolean): Promise<void> {
    this.notices.busy(newKey ? `Putting a new key on the console of ${tab.view.vm} and reconnecting…` : `Reconnecting to ${tab.view.vm}…`);
    let view: TabView;
    try {
      view = await (newKey ? this.bridge.api.reconnectWithNewKey(tab.view.id) : this.bridge.api.reconnect(tab.view.id));
    } catch (error) {
      this.notices.error((error as Error).message);
      return;
    }
    tab.view = view;
    tab.connectedAt = Date.now();
    tab.closedReason = undefined;
    tab.item.classList.remove('closed');
    tab.banner.hidden = true;
    tab.keyLabel.lastElementChild!.textContent = `key ${view.keyFingerprint}`;
    await tab.content.connect(view);
    if (newKey) this.notices.info(`New key for ${view.vm}: ${view.keyFingerprint}. The old key no longer opens the console.`);
    else this.notices.clearProgress();
    this.renderStatus();
    await this.onChange();
  }

  private async renew(tab: OpenTab): Promise<void> {
    try {
      const vm = await this.bridge.api.renewConsole(tab.view.relayId, tab.view.vm);
      if (vm.console.expiresAt) this.renewed(tab.view.relayId, tab.view.vm, vm.console.expiresAt);
      this.notices.info(`The console of ${tab.view.vm} now expires in ${timeLeft(vm.console.expiresAt)}.`);
      await this.onChange();
    } catch (error) {
      this.notices.error((error as Error).message);
    }
  }

  focusActive(): void {
    this.active?.content.focus();
  }

  /** Serial tabs: Ctrl+F opens the find box. */
  findInActive(): boolean {
    if (this.active?.content instanceof SerialTab) {
      this.active.content.focusFind();
      return true;
    }
    return false;
  }

  /** The status bar: what the active tab is connected to, for how long, and when its console expires. */
  renderStatus(): void {
    const tab = this.active;
    if (!tab) {
      this.statusBar.replaceChildren(element('span', { class: 'item muted' }, this.tabs.size === 0 ? 'No console open' : `${this.tabs.size} consoles open`));
      return;
    }
    const expiresMs = Date.parse(tab.view.expiresAt) - Date.now();
    const expiry = element('span', { class: `item expiry ${expiresMs <= 0 ? 'danger' : expiresMs < EXPIRY_WARNING_MS ? 'warn' : ''}`, title: `Expires ${new Date(tab.view.expiresAt).toLocaleString()}` },
      icon('renew', 14), `Console ${expiresMs <= 0 ? 'expired' : `expires in ${timeLeft(tab.view.expiresAt)}`}`);
    this.statusBar.replaceChildren(
      element('span', { class: 'item', title: 'Relay' }, icon('relay', 14), this.relayName(tab)),
      element('span', { class: 'item' }, icon(tab.view.kind === 'serial' ? 'serial' : 'vnc', 14), `${tab.view.vm} · ${tab.view.kind === 'serial' ? 'serial' : 'VNC'}`),
      element('span', { class: `item session ${tab.connectedAt === undefined ? 'danger' : 'ok'}` },
        element('span', { class: `dot ${tab.connectedAt === undefined ? 'danger' : 'ok'}`, 'aria-hidden': 'true' }),
        tab.connectedAt === undefined ? 'Session closed' : `Connected ${elapsed(Date.now() - tab.connectedAt)}`),
      element('span', { class: 'spacer' }),
      expiry,
      button('Renew', () => this.renew(tab), { icon: 'renew', name: 'Renew console from the status bar', variant: 'ghost', title: `Renew the console of ${tab.view.vm}` }),
    );
  }

  /** Relay names come from the sidebar's data; the app sets them. */
  relayNames = new Map<string, string>();

  private relayName(tab: OpenTab): string {
    return this.relayNames.get(tab.view.relayId) ?? 'relay';
  }

  tick(): void {
    if (!this.active) return;
    // Only the changing texts, so focus on the Renew button survives.
    const session = this.statusBar.querySelector('.session');
    if (session && this.active.connectedAt !== undefined) session.lastChild!.textContent = `Connected ${elapsed(Date.now() - this.active.connectedAt)}`;
    const expiry = this.statusBar.querySelector('.expiry');
    const ms = Date.parse(this.active.view.expiresAt) - Date.now();
    if (expiry) {
      expiry.lastChild!.textContent = `Console ${ms <= 0 ? 'expired' : `expires in ${timeLeft(this.active.view.expiresAt)}`}`;
      expiry.classList.toggle('warn', ms > 0 && ms < EXPIRY_WARNING_MS);
      expiry.classList.toggle('danger', ms <= 0);
    }
  }
}
