import type { ConsoleKind, EmbeddedStatus, PowerAction, RelayView, VmView } from '../../preload/contract.js';
import { button, element } from './dom.js';
import { EXPIRY_WARNING_MS, timeLeft } from './format.js';
import { icon } from './icons.js';

export interface SidebarActions {
  addRelay(): void;
  editRelay(relay: RelayView): void;
  removeRelay(relay: RelayView): void;
  showEndpoints(relay: RelayView): void;
  open(vm: VmView, kind: ConsoleKind): void;
  /** Watch read-only beside whoever has the console (docs/sharing.md). */
  watch(vm: VmView, kind: ConsoleKind): void;
  /** The VM's session recordings, to play and export. */
  recordings(vm: VmView): void;
  renew(vm: VmView): void;
  disable(vm: VmView): void;
  deleteConsole(vm: VmView): void;
  power(vm: VmView, action: PowerAction): void;
}

/** The power menu's items, in the order shown. */
export const POWER_ACTION_LABELS: Record<PowerAction, string> = { powerOn: 'Power on', shutdown: 'Shut down', reset: 'Reset', powerOff: 'Power off', nmi: 'Send NMI' };

const RELAY_STATE = { ok: 'connected', unreachable: 'unreachable', unauthorized: 'token refused', untrusted: 'TLS not trusted' } as const;

/** Why a control is disabled: the scope the relay's API token lacks. */
function missingScope(vm: VmView, scope: 'consoles:write' | 'power'): string {
  return `Not allowed: the API token for ${vm.relayName} lacks the "${scope}" scope. Ask the relay's administrator for a token that has it.`;
}

/** The power state as a badge tone. */
function powerTone(state: string): string {
  if (/^running$/i.test(state)) return 'ok';
  if (/^(paused|suspended|starting|stopping)/i.test(state)) return 'warn';
  if (/^(unavailable|crashed|error)/i.test(state)) return 'danger';
  return 'muted';
}

/** The sidebar: relays with their connection state, and the VM list with search and badges. */
export class Sidebar {
  readonly element: HTMLElement;
  readonly search = element('input', { type: 'search', placeholder: 'Search VMs', 'aria-label': 'Search VMs', 'aria-keyshortcuts': 'Control+Shift+F', title: 'Search VMs (Ctrl+Shift+F)' });
  private readonly relaysList = element('ul', { class: 'relays', 'aria-label': 'Relays' });
  private readonly vmList = element('ul', { class: 'vms', 'aria-label': 'Virtual machines' });
  private readonly vmCount = element('span', { class: 'count' });
  private readonly emptyState = element('p', { class: 'empty' });
  private relays: RelayView[] = [];
  private vms: VmView[] = [];
  private embedded: EmbeddedStatus = { state: 'starting', message: '' };

  constructor(private readonly actions: SidebarActions) {
    this.search.addEventListener('input', () => this.renderVms());
    this.search.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        this.search.value = '';
        this.renderVms();
      } else if (event.key === 'ArrowDown' || event.key === 'Enter') {
        // Into the list: the first VM's first action.
        const first = this.vmList.querySelector<HTMLButtonElement>('li button');
        if (first) {
          event.preventDefault();
          first.focus();
        }
      }
    });
    this.element = element('aside', { class: 'sidebar', 'aria-label': 'Sidebar' },
      element('section', { class: 'relays-section', 'aria-label': 'Relays' },
        element('div', { class: 'section-title' }, element('h2', {}, 'Relays'), button('Add a relay', () => actions.addRelay(), { icon: 'add', iconOnly: true, variant: 'ghost' })),
        this.relaysList,
      ),
      element('section', { class: 'vms-section', 'aria-label': 'VM list' },
        element('div', { class: 'section-title' }, element('h2', {}, 'Virtual machines'), this.vmCount),
        element('div', { class: 'search' }, icon('search'), this.search),
        this.emptyState,
        this.vmList,
      ),
    );
  }

  focusSearch(): void {
    this.search.focus();
    this.search.select();
  }

  setEmbedded(status: EmbeddedStatus): void {
    this.embedded = status;
    this.renderVms();
  }

  setRelays(relays: RelayView[]): void {
    this.relays = relays;
    this.relaysList.replaceChildren(...relays.map((relay) => this.relayRow(relay)));
    if (relays.length === 0) this.relaysList.append(element('li', { class: 'placeholder' }, this.embedded.state === 'starting' ? 'Starting the embedded relay…' : 'No relay yet.'));
  }

  setVms(vms: VmView[]): void {
    this.vms = vms;
    this.renderVms();
  }

  private relayRow(relay: RelayView): HTMLElement {
    const state = RELAY_STATE[relay.status];
    return element('li', { 'aria-label': relay.name, 'data-status': relay.status, class: 'relay' },
      element('div', { class: 'row-main' },
        element('span', { class: `dot ${relay.status === 'ok' ? 'ok' : relay.status === 'unreachable' ? 'danger' : 'warn'}`, 'aria-hidden': 'true' }),
        element('strong', { class: 'name' }, relay.name),
        element('span', { class: `status badge ${relay.status === 'ok' ? 'ok' : 'danger'}`, title: relay.error ?? '' }, state),
      ),
      element('small', { class: 'detail', title: `${relay.url}\nSSH host key ${relay.hostKeyFingerprint}${relay.tlsFingerprint ? `\nTLS certificate (pinned) ${relay.tlsFingerprint}` : ''}\nConsoles through the endpoint "${relay.endpoint}"` },
        ...(relay.url.startsWith('https://') ? [icon('lock'), ' '] : []),
        `${relay.url.replace(/^https?:\/\//, '')} · endpoint ${relay.endpoint}`),
      ...(relay.token && !relay.token.scopes.includes('admin') ? [element('small', {
        class: 'token-scope',
        title: `API token "${relay.token.name}": ${relay.token.scopes.join(', ')}${relay.token.virtualMachines ? `; only VMs matching ${relay.token.virtualMachines.join(', ')}` : ''}`,
      }, `token ${relay.token.name}: ${relay.token.scopes.join(', ')}${relay.token.virtualMachines ? ` · ${relay.token.virtualMachines.join(', ')}` : ''}`)] : []),
      ...(relay.error ? [element('small', { class: 'error-text' }, relay.error)] : []),
      element('div', { class: 'row-actions' },
        button('Endpoints', () => this.actions.showEndpoints(relay), { icon: 'endpoints', name: `Endpoints of ${relay.name}`, variant: 'ghost' }),
        ...(relay.embedded ? [element('span', { class: 'tag' }, 'this computer')] : [
          button('Edit', () => this.actions.editRelay(relay), { icon: 'edit', name: `Edit relay ${relay.name}`, variant: 'ghost' }),
          button('Remove', () => this.actions.removeRelay(relay), { icon: 'remove', iconOnly: true, name: `Remove relay ${relay.name}`, variant: 'ghost' }),
        ]),
      ),
    );
  }

  private renderVms(): void {
    const query = this.search.value.trim().toLowerCase();
    const shown = this.vms.filter((vm) => !query || [vm.name, vm.relayName, vm.powerState, vm.agent ?? ''].some((text) => text.toLowerCase().includes(query)));
    this.vmCount.textContent = this.vms.length > 0 ? (shown.length === this.vms.length ? String(this.vms.length) : `${shown.length} of ${this.vms.length}`) : '';
    if (this.relays.length === 0) {
      this.emptyState.textContent = ['unavailable', 'failed'].includes(this.embedded.state) ? this.embedded.message : 'No relay yet: add one, or wait for the embedded relay to start.';
    } else {
      this.emptyState.textContent = this.vms.length === 0 ? 'No VMs on the connected relays.' : shown.length === 0 ? 'No VM matches the search.' : '';
    }
    this.emptyState.hidden = !this.emptyState.textContent;
    const manyRelays = new Set(this.vms.map((vm) => vm.relayId)).size > 1;
    this.vmList.replaceChildren(...shown.map((vm) => this.vmRow(vm, manyRelays)));
  }

  private vmRow(vm: VmView, showRelay: boolean): HTMLElement {
    const state = vm.console.state;
    const consoleBadge = element('span', { class: 'console-state badge', 'data-expires-at': vm.console.expiresAt ?? '' });
    this.describeConsole(consoleBadge, vm);
    // Opening makes the console ready with this app's key (create, enable, renew): it needs consoles:write.
    const consolesDenied = vm.allowed.consoles ? undefined : missingScope(vm, 'consoles:write');
    const open = (kind: ConsoleKind, label: string): HTMLButtonElement[] =>
      vm.consoleTypes.includes(kind) ? [button(label, () => this.actions.open(vm, kind), { icon: kind, name: `Open ${kind === 'serial' ? 'serial' : 'VNC'} console`, title: `Open the ${kind === 'serial' ? 'serial' : 'VNC'} console of ${vm.name}`, variant: 'primary', disabledBecause: consolesDenied })] : [];
    // Watching needs a console that allows observers and holds this app's key; it changes nothing on the console.
    const watch = (kind: ConsoleKind): HTMLButtonElement[] =>
      vm.consoleTypes.includes(kind) && vm.console.allowObservers && vm.console.ownKey && state === 'enabled'
        ? [button(`Watch ${kind === 'serial' ? 'serial' : 'VNC'}`, () => this.actions.watch(vm, kind), { icon: 'watch', name: `Watch ${kind === 'serial' ? 'serial' : 'VNC'} console`, title: `Watch the ${kind === 'serial' ? 'serial' : 'VNC'} console of ${vm.name} read-only, beside whoever has it`, variant: 'ghost' })]
        : [];
    return element('li', { 'aria-label': vm.name, 'data-console': state, 'data-relay': vm.relayId, class: 'vm' },
      element('div', { class: 'row-main' },
        element('span', { class: `dot ${powerTone(vm.powerState)}`, 'aria-hidden': 'true' }),
        element('strong', { class: 'vm-name' }, vm.name),
        ...(showRelay ? [element('small', { class: 'relay' }, vm.relayName)] : []),
        // A fleet gateway's VM says which hypervisor it is on (a VM reads Unavailable while its agent is away).
        ...(vm.agent ? [element('small', { class: 'agent', title: `on the hypervisor agent ${vm.agent}` }, icon('agent'), vm.agent)] : []),
      ),
      element('div', { class: 'badges' },
        element('span', { class: `power badge ${powerTone(vm.powerState)}` }, vm.powerState),
        consoleBadge,
        element('span', { class: 'expires', hidden: '', 'data-expires': vm.console.expiresAt ?? '' }, vm.console.expiresAt ?? ''),
      ),
      ...(consolesDenied ? [element('small', { class: 'scope-note', title: consolesDenied }, icon('lock'), ` read only: the token lacks consoles:write`)] : []),
      ...(vm.console.keyFingerprint ? [element('small', { class: `fingerprint${vm.console.ownKey ? '' : ' foreign'}`, title: vm.console.ownKey ? vm.console.keyFingerprint : `${vm.console.keyFingerprint}: not this app's key; opening the console asks before replacing it` }, `${vm.console.ownKey ? 'your key' : 'another key'} ${vm.console.keyFingerprint}`)] : []),
      element('div', { class: 'row-actions' },
        ...open('serial', 'Serial'),
        ...open('vnc', 'VNC'),
        ...watch('serial'),
        ...watch('vnc'),
        ...(vm.consoleTypes.includes('serial') ? [button('Recordings', () => this.actions.recordings(vm), { icon: 'record', iconOnly: true, variant: 'ghost', name: `Recordings of ${vm.name}`, title: `Play the recorded sessions of ${vm.name}` })] : []),
        ...(state !== 'none' ? [
          button('Renew console', () => this.actions.renew(vm), { icon: 'renew', iconOnly: true, variant: 'ghost', title: `Renew the console of ${vm.name} for its full lifetime`, disabledBecause: consolesDenied }),
          ...(state === 'enabled' ? [button('Disable console', () => this.actions.disable(vm), { icon: 'disable', iconOnly: true, variant: 'ghost', title: `Disable the console of ${vm.name} (closes its sessions)`, disabledBecause: consolesDenied })] : []),
          button('Delete console', () => this.actions.deleteConsole(vm), { icon: 'remove', iconOnly: true, variant: 'ghost', title: `Delete the console of ${vm.name}`, disabledBecause: consolesDenied }),
        ] : []),
        // A token without "power" gets no power menu at all: there is nothing in it it could use.
        ...(vm.powerActions.length > 0 && vm.allowed.power ? [this.powerMenu(vm)] : []),
      ),
    );
  }

  /** Reset, Power off, Power on, Send NMI: only what the VM's backend offers; each asks first. */
  private powerMenu(vm: VmView): HTMLElement {
    const menu = element('details', { class: 'menu power-menu' },
      element('summary', { 'aria-label': `Power actions for ${vm.name}`, title: `Power actions for ${vm.name}` }, icon('power')),
      element('div', { class: 'menu-items', role: 'group', 'aria-label': `Power actions for ${vm.name}` },
        ...(Object.keys(POWER_ACTION_LABELS) as PowerAction[])
          .filter((action) => vm.powerActions.includes(action))
          .map((action) => button(POWER_ACTION_LABELS[action], () => {
            menu.open = false;
            this.actions.power(vm, action);
          }))),
    );
    return menu;
  }

  private describeConsole(badge: HTMLElement, vm: VmView): void {
    const state = vm.console.state;
    if (state === 'none') {
      badge.textContent = 'no console';
      badge.classList.add('muted');
      return;
    }
    if (state !== 'enabled') {
      badge.textContent = `console ${state}`;
      badge.classList.add(state === 'expired' ? 'danger' : 'muted');
      return;
    }
    const left = timeLeft(vm.console.expiresAt);
    const soon = Date.parse(vm.console.expiresAt ?? '') - Date.now() < EXPIRY_WARNING_MS;
    badge.textContent = left === 'expired' ? 'console expired' : `console on · ${left} left`;
    badge.classList.remove('ok', 'warn', 'danger');
    badge.classList.add(left === 'expired' ? 'danger' : soon ? 'warn' : 'ok');
    badge.title = `Expires ${new Date(vm.console.expiresAt ?? '').toLocaleString()}`;
  }

  /** Updates the time left on each console (every second). */
  tick(): void {
    for (const row of this.vmList.querySelectorAll<HTMLElement>('li.vm[data-console="enabled"]')) {
      const vm = this.vms.find((v) => v.name === row.getAttribute('aria-label') && v.relayId === row.dataset.relay);
      const badge = row.querySelector<HTMLElement>('.console-state');
      if (vm && badge) this.describeConsole(badge, vm);
    }
  }
}
