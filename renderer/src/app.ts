import type { DesktopBridge, DesktopEvent, RelayView, TabView, VmView } from '../../preload/contract.js';
import { button, checkbox, confirmDialog, element } from './dom.js';
import { SerialTab } from './serial-tab.js';
import { VncTab } from './vnc-tab.js';

interface OpenTab {
  view: TabView;
  tabButton: HTMLButtonElement;
  panel: HTMLElement;
  banner: HTMLElement;
  content: SerialTab | VncTab;
}

function expiresIn(iso: string | undefined): string {
  if (!iso) return '';
  const ms = Date.parse(iso) - Date.now();
  if (ms <= 0) return 'expired';
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return `expires in ${Math.max(1, Math.round(ms / 1000))} s`;
  if (minutes < 120) return `expires in ${minutes} min`;
  return `expires in ${Math.round(minutes / 60)} h`;
}

/** The whole UI: relays, the VM launcher, endpoints and console tabs. */
export class App {
  private readonly notice = element('div', { class: 'notice', role: 'alert' });
  private readonly embedded = element('span', { class: 'embedded', role: 'status' });
  private readonly relaysList = element('ul', { class: 'relays', 'aria-label': 'Relays' });
  private readonly vmList = element('ul', { class: 'vms', 'aria-label': 'Virtual machines' });
  private readonly emptyState = element('p', { class: 'empty' });
  private readonly filter = element('input', { type: 'search', placeholder: 'Filter VMs', 'aria-label': 'Filter VMs' });
  private readonly tabList = element('div', { role: 'tablist', 'aria-label': 'Consoles' });
  private readonly panels = element('div', { class: 'panels' });
  private readonly endpointsSection = element('section', { class: 'endpoints', 'aria-label': 'Private endpoints' });
  private readonly tabs = new Map<string, OpenTab>();
  private relays: RelayView[] = [];
  private vms: VmView[] = [];

  constructor(
    private readonly root: HTMLElement,
    private readonly bridge: DesktopBridge,
  ) {}

  async start(): Promise<void> {
    this.render((await this.bridge.api.getSettings()).autoRenew);
    this.bridge.onEvent((event) => this.onEvent(event));
    this.showEmbedded(await this.bridge.api.getEmbeddedStatus());
    await this.refresh();
    setInterval(() => void this.refresh(), 5000);
  }

  private render(autoRenew: boolean): void {
    const addForm = this.addRelayForm();
    this.filter.addEventListener('input', () => this.renderVms());
    this.root.append(
      element('header', {}, element('h1', {}, 'Lifeline'), this.embedded, checkbox('Auto-renew open consoles', autoRenew, (on) => void this.run(() => this.bridge.api.setAutoRenew(on)))),
      this.notice,
      element('main', {},
        element('aside', {},
          element('section', { 'aria-label': 'Relays' }, element('h2', {}, 'Relays'), this.relaysList, addForm),
          this.endpointsSection,
        ),
        element('section', { class: 'launcher', 'aria-label': 'Launcher' }, element('h2', {}, 'Virtual machines'), this.filter, this.emptyState, this.vmList),
        element('section', { class: 'consoles', 'aria-label': 'Open consoles' }, this.tabList, this.panels),
      ),
    );
  }

  private say(message: string): void {
    this.notice.textContent = message;
  }

  private async run<T>(action: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await action();
      this.say('');
      return result;
    } catch (error) {
      this.say((error as Error).message);
      return undefined;
    }
  }

  private showEmbedded(status: { state: string; message: string }): void {
    this.embedded.textContent = status.message;
    this.embedded.dataset.state = status.state;
  }

  private onEvent(event: DesktopEvent): void {
    if (event.type === 'embeddedStatus') {
      this.showEmbedded(event.status);
      void this.refresh();
    } else if (event.type === 'tabClosed') {
      const tab = this.tabs.get(event.tabId);
      if (!tab) return;
      tab.banner.hidden = false;
      tab.banner.replaceChildren(`Session closed: ${event.reason}. `, button('Reconnect', () => this.reconnect(tab, false), { name: 'Reconnect' }));
    } else if (event.type === 'consoleRenewed') {
      for (const tab of this.tabs.values()) if (tab.view.vm === event.vm && tab.view.relayId === event.relayId) tab.view.expiresAt = event.expiresAt;
      void this.refresh();
    }
  }

  private addRelayForm(): HTMLElement {
    const name = element('input', { placeholder: 'Name', 'aria-label': 'Relay name' });
    const url = element('input', { placeholder: 'http://relay:8440', 'aria-label': 'Relay URL' });
    const token = element('input', { type: 'password', placeholder: 'API token', 'aria-label': 'Relay API token' });
    const form = element('form', { class: 'add-relay', 'aria-label': 'Add relay' }, name, url, token, element('button', { type: 'submit' }, 'Add relay'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.run(async () => {
        await this.bridge.api.addRelay({ name: name.value, url: url.value, token: token.value });
        token.value = '';
        await this.refresh();
      });
    });
    return form;
  }

  async refresh(): Promise<void> {
    let relays: RelayView[];
    let vms: VmView[];
    try {
      [relays, vms] = await Promise.all([this.bridge.api.listRelays(), this.bridge.api.listVms()]);
    } catch (error) {
      this.say((error as Error).message);
      return;
    }
    // Re-render only what changed, so a form being filled in or a focused button survives the periodic refresh.
    if (JSON.stringify(relays) !== JSON.stringify(this.relays)) {
      this.relays = relays;
      this.renderRelays();
    }
    if (JSON.stringify(vms) !== JSON.stringify(this.vms) || this.relays.length === 0) {
      this.vms = vms;
      this.renderVms();
    }
  }

  private renderRelays(): void {
    this.relaysList.replaceChildren(
      ...this.relays.map((relay) =>
        element('li', { 'aria-label': relay.name, 'data-status': relay.status },
          element('strong', {}, relay.name), ` ${relay.url} `,
          element('span', { class: 'status' }, relay.status === 'ok' ? 'connected' : relay.error ?? relay.status),
          element('small', {}, ` host key ${relay.hostKeyFingerprint}, endpoint ${relay.endpoint}`),
          button('Endpoints', () => this.showEndpoints(relay)),
          ...(relay.embedded ? [] : [
            this.editRelayForm(relay),
            button('Remove', () => this.run(async () => {
              await this.bridge.api.removeRelay(relay.id);
              await this.refresh();
            }), { name: `Remove relay ${relay.name}` }),
          ]),
        ),
      ),
    );
  }

  /** Rename a relay or give it a new API token (checked against the relay before it is kept). */
  private editRelayForm(relay: RelayView): HTMLElement {
    const name = element('input', { value: relay.name, 'aria-label': `New name for ${relay.name}` });
    const token = element('input', { type: 'password', placeholder: 'new API token (optional)', 'aria-label': `New API token for ${relay.name}` });
    const form = element('form', { class: 'edit-relay', 'aria-label': `Edit relay ${relay.name}` }, name, token, element('button', { type: 'submit' }, 'Save relay'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.run(async () => {
        await this.bridge.api.updateRelay({ id: relay.id, name: name.value, ...(token.value && { token: token.value }) });
        token.value = '';
        await this.refresh();
      });
    });
    return element('details', {}, element('summary', {}, 'Edit'), form);
  }

  private renderVms(): void {
    const query = this.filter.value.trim().toLowerCase();
    const shown = this.vms.filter((vm) => !query || vm.name.toLowerCase().includes(query) || vm.relayName.toLowerCase().includes(query));
    if (this.relays.length === 0) {
      this.emptyState.textContent = this.embedded.dataset.state === 'unavailable' ? this.embedded.textContent ?? '' : 'No relay yet: add one, or wait for the embedded relay to start.';
    } else {
      this.emptyState.textContent = this.vms.length === 0 ? 'No VMs on the connected relays.' : shown.length === 0 ? 'No VM matches the filter.' : '';
    }
    this.vmList.replaceChildren(
      ...shown.map((vm) => {
        const state = vm.console.state;
        const detail = state === 'enabled' ? `console enabled, ${expiresIn(vm.console.expiresAt)}` : state === 'none' ? 'no console' : `console ${state}`;
        const actions = [
          ...(vm.consoleTypes.includes('serial') ? [button('Open serial console', () => this.open(vm, 'serial'))] : []),
          ...(vm.consoleTypes.includes('vnc') ? [button('Open VNC console', () => this.open(vm, 'vnc'))] : []),
          ...(state !== 'none' ? [
            button('Renew console', () => this.run(async () => {
              await this.bridge.api.renewConsole(vm.relayId, vm.name);
              await this.refresh();
            })),
            button('Disable console', () => this.run(async () => {
              await this.bridge.api.disableConsole(vm.relayId, vm.name);
              await this.refresh();
            })),
            button('Delete console', () => this.run(async () => {
              await this.bridge.api.deleteConsole(vm.relayId, vm.name);
              await this.refresh();
            })),
          ] : []),
        ];
        return element('li', { 'aria-label': vm.name, 'data-console': state },
          element('strong', { class: 'vm-name' }, vm.name),
          element('span', { class: 'power' }, vm.powerState),
          element('span', { class: 'console-state' }, detail),
          element('span', { class: 'expires', 'data-expires': vm.console.expiresAt ?? '' }, vm.console.expiresAt ?? ''),
          element('small', { class: 'fingerprint' }, vm.console.keyFingerprint ? `key ${vm.console.keyFingerprint}${vm.console.ownKey ? ' (yours)' : ''}` : ''),
          element('small', { class: 'relay' }, vm.relayName),
          element('span', { class: 'actions' }, ...actions),
        );
      }),
    );
  }

  private async showEndpoints(relay: RelayView): Promise<void> {
    const endpoints = await this.run(() => this.bridge.api.listEndpoints(relay.id));
    if (!endpoints) return;
    const name = element('input', { placeholder: 'name', 'aria-label': 'Endpoint name' });
    const ip = element('input', { placeholder: 'IP address (optional)', 'aria-label': 'Endpoint IP address' });
    const prefixes = element('input', { placeholder: 'allowed prefixes, comma-separated', 'aria-label': 'Allowed source prefixes' });
    const form = element('form', { 'aria-label': 'Create endpoint' }, name, ip, prefixes, element('button', { type: 'submit' }, 'Create endpoint'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.run(async () => {
        const allowed = prefixes.value.split(',').map((p) => p.trim()).filter(Boolean);
        await this.bridge.api.createEndpoint(relay.id, { name: name.value.trim(), ...(ip.value.trim() && { ipAddress: ip.value.trim() }), ...(allowed.length > 0 && { allowedSourcePrefixes: allowed }) });
        await this.showEndpoints(relay);
      });
    });
    this.endpointsSection.replaceChildren(
      element('h2', {}, `Private endpoints of ${relay.name}`),
      element('ul', { 'aria-label': 'Endpoints' },
        ...endpoints.map((e) =>
          element('li', { 'aria-label': e.name },
            `${e.name}: ${e.ipAddress} (ssh ${e.sshPort}, vnc ${e.vncPort}) ${e.allowedSourcePrefixes.join(', ') || 'any source'} `,
            e.name === relay.endpoint ? element('em', {}, 'used for consoles') : button('Use for consoles', () => this.run(async () => {
              await this.bridge.api.updateRelay({ id: relay.id, endpoint: e.name });
              await this.refresh();
              await this.showEndpoints({ ...relay, endpoint: e.name });
            })),
            ...(e.name === 'default' ? [] : [button('Delete', () => this.run(async () => {
              await this.bridge.api.deleteEndpoint(relay.id, e.name);
              await this.showEndpoints(relay);
            }), { name: `Delete endpoint ${e.name}` })]),
          ),
        ),
      ),
      form,
    );
  }

  private async open(vm: VmView, kind: 'serial' | 'vnc'): Promise<void> {
    const existing = [...this.tabs.values()].find((t) => t.view.vm === vm.name && t.view.relayId === vm.relayId && t.view.kind === kind);
    if (existing) return this.select(existing);
    // A console with someone else's key: replacing it locks them out, so ask, naming the key.
    let replaceKey: string | undefined;
    if (vm.console.state !== 'none' && !vm.console.ownKey && vm.console.keyFingerprint) {
      const replace = await confirmDialog(
        'Replace console key?',
        [
          `The console of ${vm.name} holds another key, not this app's:`,
          element('code', { class: 'key-fingerprint' }, vm.console.keyFingerprint),
          'Opening it replaces that key with this app\'s. Whoever holds it loses access, and their open session is closed.',
        ],
        'Replace key and open',
      );
      if (!replace) return;
      replaceKey = vm.console.keyFingerprint;
    }
    this.say(`Opening the ${kind === 'serial' ? 'serial' : 'VNC'} console of ${vm.name}…`);
    const view = await this.run(() => this.bridge.api.openConsole(vm.relayId, vm.name, kind, replaceKey ? { replaceKey } : {}));
    if (!view) return;
    const content = kind === 'serial' ? new SerialTab(this.bridge, view) : new VncTab(this.bridge);
    const banner = element('div', { class: 'banner', role: 'alert' });
    banner.hidden = true;
    const tab: OpenTab = { view, content, banner, panel: element('div', { role: 'tabpanel', 'aria-label': view.title }), tabButton: element('button', { role: 'tab', 'aria-label': view.title }, view.title) };
    tab.panel.append(
      element('div', { class: 'toolbar' },
        button('Reconnect', () => this.reconnect(tab, false)),
        button('Reconnect with new key', () => this.reconnect(tab, true)),
        button('Close tab', () => this.closeTab(tab)),
        element('small', { class: 'tab-key' }, `key ${view.keyFingerprint}`),
      ),
      banner,
      content.element,
    );
    tab.tabButton.addEventListener('click', () => this.select(tab));
    this.tabList.append(tab.tabButton);
    this.panels.append(tab.panel);
    this.tabs.set(view.id, tab);
    this.select(tab);
    await content.connect(view);
    await this.refresh();
  }

  private select(tab: OpenTab): void {
    for (const other of this.tabs.values()) {
      other.panel.hidden = other !== tab;
      other.tabButton.setAttribute('aria-selected', String(other === tab));
    }
    tab.content.show();
  }

  private async reconnect(tab: OpenTab, newKey: boolean): Promise<void> {
    this.say(newKey ? `Rotating the key of ${tab.view.vm} and reconnecting…` : `Reconnecting to ${tab.view.vm}…`);
    const view = await this.run(() => (newKey ? this.bridge.api.reconnectWithNewKey(tab.view.id) : this.bridge.api.reconnect(tab.view.id)));
    if (!view) return;
    tab.view = view;
    tab.banner.hidden = true;
    tab.panel.querySelector('.tab-key')!.textContent = `key ${view.keyFingerprint}`;
    await tab.content.connect(view);
    if (newKey) this.say(`New key for ${view.vm}: ${view.keyFingerprint}`);
    await this.refresh();
  }

  private async closeTab(tab: OpenTab): Promise<void> {
    await this.run(() => this.bridge.api.closeTab(tab.view.id));
    tab.content.dispose();
    tab.panel.remove();
    tab.tabButton.remove();
    this.tabs.delete(tab.view.id);
    const next = [...this.tabs.values()].at(-1);
    if (next) this.select(next);
  }
}
