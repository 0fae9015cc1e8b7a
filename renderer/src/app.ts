import type { ConsoleKind, DesktopBridge, DesktopEvent, EmbeddedStatus, KeychainStatus, PowerAction, RelayView, ThemeSetting, VmView } from '../../preload/contract.js';
import { addRelayDialog, editRelayDialog, endpointsDialog, helpDialog } from './dialogs.js';
import { button, checkbox, confirmDialog, element } from './dom.js';
import { icon } from './icons.js';
import { Notices } from './notices.js';
import { recordingsDialog } from './recordings.js';
import { POWER_ACTION_LABELS, Sidebar } from './sidebar.js';
import { ThemeController } from './theme.js';
import { Workspace } from './workspace.js';

/**
 * The whole UI: a top bar (embedded relay, settings), the keychain notice, the sidebar (relays,
 * VMs), the workspace (console tabs) and the status bar. Fills the window; nothing scrolls but lists.
 */
export class App {
  private readonly notices = new Notices();
  private readonly theme = new ThemeController();
  private readonly embedded = element('span', { class: 'embedded', role: 'status' });
  private readonly keychainNotice = element('div', { class: 'keychain-notice', role: 'note', 'aria-label': 'Keychain' });
  private readonly sidebar: Sidebar;
  private readonly workspace: Workspace;
  private relays: RelayView[] = [];
  private vms: VmView[] = [];
  private embeddedStatus: EmbeddedStatus = { state: 'starting', message: '' };

  constructor(
    private readonly root: HTMLElement,
    private readonly bridge: DesktopBridge,
  ) {
    this.sidebar = new Sidebar({
      addRelay: () => addRelayDialog(bridge, async (relay) => {
        this.notices.info(`Added the relay ${relay.name}.`);
        await this.refresh();
      }),
      editRelay: (relay) => editRelayDialog(bridge, relay, () => this.refresh()),
      removeRelay: (relay) => void this.removeRelay(relay),
      showEndpoints: (relay) => void this.run(() => endpointsDialog(bridge, relay, () => this.refresh())),
      open: (vm, kind) => void this.open(vm, kind),
      watch: (vm, kind) => void this.watch(vm, kind),
      recordings: (vm) => void this.run(() => recordingsDialog(bridge, vm, this.theme, (error) => this.notices.error(error.message))),
      renew: (vm) => void this.run(async () => {
        await bridge.api.renewConsole(vm.relayId, vm.name);
        await this.refresh();
      }),
      disable: (vm) => void this.run(async () => {
        await bridge.api.disableConsole(vm.relayId, vm.name);
        this.notices.info(`The console of ${vm.name} is disabled; its sessions are closed.`);
        await this.refresh();
      }),
      deleteConsole: (vm) => void this.deleteConsole(vm),
      power: (vm, action) => void this.power(vm, action),
    });
    this.workspace = new Workspace(bridge, this.notices, this.theme, () => this.refresh());
  }

  async start(): Promise<void> {
    const settings = await this.bridge.api.getSettings();
    this.theme.set(settings.theme);
    this.render(settings.autoRenew, settings.theme);
    this.bridge.onEvent((event) => this.onEvent(event));
    this.showKeychain(await this.bridge.api.getKeychainStatus());
    this.showEmbedded(await this.bridge.api.getEmbeddedStatus());
    document.addEventListener('keydown', (event) => this.onShortcut(event), { capture: true });
    await this.refresh();
    setInterval(() => void this.refresh(), 5000);
    setInterval(() => {
      this.sidebar.tick();
      this.workspace.tick();
    }, 1000);
  }

  private render(autoRenew: boolean, theme: ThemeSetting): void {
    const themeSelect = element('select', { 'aria-label': 'Theme', title: 'Theme' },
      ...(['system', 'light', 'dark'] as const).map((value) => {
        const option = element('option', { value }, value === 'system' ? 'System theme' : value === 'light' ? 'Light' : 'Dark');
        option.selected = value === theme;
        return option;
      }));
    themeSelect.addEventListener('change', () => {
      const value = themeSelect.value as ThemeSetting;
      this.theme.set(value);
      void this.run(() => this.bridge.api.setTheme(value));
    });
    this.keychainNotice.hidden = true;
    this.root.append(
      element('header', { class: 'topbar' },
        element('div', { class: 'brand' }, icon('app', 20), element('h1', {}, 'Lifeline')),
        element('span', { class: 'embedded-wrap' }, element('span', { class: 'dot', 'aria-hidden': 'true' }), this.embedded),
        element('span', { class: 'spacer' }),
        checkbox('Auto-renew open consoles', autoRenew, (on) => void this.run(() => this.bridge.api.setAutoRenew(on)), { icon: 'renew', class: 'toggle' }),
        element('label', { class: 'theme-select' }, icon(this.theme.current === 'dark' ? 'dark' : 'light'), themeSelect),
        button('Keyboard shortcuts', () => helpDialog(), { icon: 'help', iconOnly: true, variant: 'ghost', title: 'Keyboard shortcuts (Ctrl+?)' }),
      ),
      this.keychainNotice,
      element('div', { class: 'body' }, this.sidebar.element, this.workspace.element),
      this.workspace.statusBar,
    );
    document.body.append(this.notices.element);
    this.theme.onChange((value) => {
      themeSelect.previousElementSibling?.replaceWith(icon(value === 'dark' ? 'dark' : 'light'));
    });
  }

  private async run<T>(action: () => Promise<T>): Promise<T | undefined> {
    try {
      return await action();
    } catch (error) {
      this.notices.error((error as Error).message);
      return undefined;
    }
  }

  private showEmbedded(status: EmbeddedStatus): void {
    this.embeddedStatus = status;
    this.embedded.textContent = status.message;
    this.embedded.title = status.message;
    this.embedded.parentElement!.dataset.state = status.state;
    this.embedded.dataset.state = status.state;
    this.sidebar.setEmbedded(status);
    if (status.state === 'failed') this.notices.error(status.message);
  }

  private showKeychain(status: KeychainStatus): void {
    this.keychainNotice.hidden = status.mode === 'os';
    this.keychainNotice.replaceChildren(icon('warning'), element('span', {}, status.message));
  }

  private onEvent(event: DesktopEvent): void {
    if (event.type === 'embeddedStatus') {
      this.showEmbedded(event.status);
      void this.refresh();
    } else if (event.type === 'keychainStatus') {
      this.showKeychain(event.status);
    } else if (event.type === 'tabClosed') {
      this.workspace.sessionClosed(event.tabId, event.reason);
    } else if (event.type === 'consoleRenewed') {
      this.workspace.renewed(event.relayId, event.vm, event.expiresAt);
      void this.refresh();
    } else if (event.type === 'consoleNotice') {
      this.workspace.notice(event.tabId, event);
    }
  }

  /** App-wide shortcuts, taken before a terminal or VNC screen sees the key. */
  private onShortcut(event: KeyboardEvent): void {
    const ctrlShift = event.ctrlKey && event.shiftKey && !event.altKey && !event.metaKey;
    let handled = true;
    if (ctrlShift && event.code === 'KeyF') this.sidebar.focusSearch();
    else if ((ctrlShift && event.code === 'BracketRight') || (event.ctrlKey && !event.shiftKey && event.key === 'Tab')) this.workspace.cycle(1);
    else if ((ctrlShift && event.code === 'BracketLeft') || (event.ctrlKey && event.shiftKey && event.key === 'Tab')) this.workspace.cycle(-1);
    else if (ctrlShift && event.code === 'KeyX') this.workspace.closeActive();
    else if (ctrlShift && event.code === 'KeyE') handled = this.workspace.findInActive();
    else if (ctrlShift && event.code === 'Slash') helpDialog();
    else handled = false;
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }

  async refresh(): Promise<void> {
    let relays: RelayView[];
    let vms: VmView[];
    try {
      [relays, vms] = await Promise.all([this.bridge.api.listRelays(), this.bridge.api.listVms()]);
    } catch (error) {
      this.notices.error((error as Error).message);
      return;
    }
    // Re-render only what changed, so a focused button survives the periodic refresh.
    if (JSON.stringify(relays) !== JSON.stringify(this.relays)) {
      this.relays = relays;
      this.workspace.relayNames = new Map(relays.map((r) => [r.id, r.name]));
      this.sidebar.setRelays(relays);
      this.workspace.renderStatus();
    }
    if (JSON.stringify(vms) !== JSON.stringify(this.vms) || this.relays.length === 0) {
      this.vms = vms;
      this.sidebar.setVms(vms);
    }
  }

  private async removeRelay(relay: RelayView): Promise<void> {
    const sure = await confirmDialog('Remove relay?', [`Remove the relay ${relay.name} (${relay.url})? Its open consoles close, and its API token and console keys are deleted from the keychain. The relay itself and its consoles are not changed.`], 'Remove relay');
    if (!sure) return;
    await this.run(async () => {
      await this.bridge.api.removeRelay(relay.id);
      this.notices.info(`Removed the relay ${relay.name}.`);
      await this.refresh();
    });
  }

  private async deleteConsole(vm: VmView): Promise<void> {
    const sure = await confirmDialog('Delete console?', [`Delete the console of ${vm.name}? Its sessions close at once and its key stops working; opening a console again creates a new one.`], 'Delete console');
    if (!sure) return;
    await this.run(async () => {
      await this.bridge.api.deleteConsole(vm.relayId, vm.name);
      this.notices.info(`Deleted the console of ${vm.name}.`);
      await this.refresh();
    });
  }

  private async power(vm: VmView, action: PowerAction): Promise<void> {
    const what: Record<PowerAction, [string, string]> = {
      reset: [`Reset ${vm.name}?`, `${vm.name} restarts at once, as with its reset button: unsaved work in the guest is lost. Open consoles stay connected and show it booting.`],
      shutdown: [`Shut down ${vm.name}?`, `${vm.name} gets the ACPI power button: a guest that handles it shuts down cleanly; one that does not keeps running.`],
      powerOff: [`Power off ${vm.name}?`, `${vm.name} stops at once, as when its power is cut: unsaved work in the guest is lost. A VM run by QEMU alone must then be started again where it is defined.`],
      powerOn: [`Power on ${vm.name}?`, `${vm.name} starts.`],
      nmi: [`Send an NMI to ${vm.name}?`, `${vm.name} gets a non-maskable interrupt: Linux logs it, or panics and dumps when it is set to (kernel.unknown_nmi_panic).`],
    };
    const [title, text] = what[action];
    if (!(await confirmDialog(title, [text], POWER_ACTION_LABELS[action]))) return;
    await this.run(async () => {
      await this.bridge.api.powerAction(vm.relayId, vm.name, action);
      this.notices.info(`${POWER_ACTION_LABELS[action]}: sent to ${vm.name}.`);
      await this.refresh();
    });
  }

  /** A read-only tab beside whoever has the console: nothing about the console changes. */
  private async watch(vm: VmView, kind: ConsoleKind): Promise<void> {
    const existing = this.workspace.find(vm.relayId, vm.name, kind, 'observer');
    if (existing) return this.workspace.select(existing);
    this.notices.busy(`Joining the ${kind === 'serial' ? 'serial' : 'VNC'} console of ${vm.name} to watch…`);
    const view = await this.run(() => this.bridge.api.openConsole(vm.relayId, vm.name, kind, { observe: true }));
    this.notices.clearProgress();
    if (view) await this.workspace.add(view);
  }

  private async open(vm: VmView, kind: ConsoleKind): Promise<void> {
    const existing = this.workspace.find(vm.relayId, vm.name, kind);
    if (existing) return this.workspace.select(existing);
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
    this.notices.busy(`Opening the ${kind === 'serial' ? 'serial' : 'VNC'} console of ${vm.name}…`);
    const view = await this.run(() => this.bridge.api.openConsole(vm.relayId, vm.name, kind, replaceKey ? { replaceKey } : {}));
    this.notices.clearProgress();
    if (!view) return;
    await this.workspace.add(view);
    await this.refresh();
  }
}
