import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { ConsoleResource } from '@lifeline/relay/client';
import type { ConsoleControl, ConsoleKind, DesktopEvent, OpenConsoleOptions, TabView } from '../../preload/contract.js';
import { noticeMeaning } from '../services/sharing-notices.js';
import { watchVncScreen } from './vnc-awareness.js';
import type { KeyStore } from '../keys/key-store.js';
import type { MainLogger } from '../services/main-log.js';
import type { RelayRegistry } from '../relays/relay-registry.js';
import { ConsoleConnection } from '../services/console-connection.js';
import type { RelayApi } from '../services/relay-api.js';
import type { KeyPair } from '../services/ssh-keys.js';
import { RENEW_AT_REMAINING_SHARE, type ConsoleManager } from './console-manager.js';

const RENEW_CHECK_MS = 1000;

interface Tab {
  view: TabView;
  /** The tab's own logger: its records name the tab, relay, VM and kind. */
  log: MainLogger;
  connection: ConsoleConnection;
  renewTimer?: NodeJS.Timeout;
  /** A VNC tab's questions to the relay about its screen (recorded, viewers). */
  stopWatching?: () => void;
  ttlMs: number;
  /** Opened to watch: reconnects watch again, whatever role the tab has come to since. */
  observing: boolean;
}

/**
 * The open console tabs: each an SSH connection to the relay (serial shell or the VNC forward)
 * with a stream id the transports pipe, kept from expiring while open (auto-renew), reconnected,
 * re-keyed in one click, resized, sent a break, closed.
 */
export class TabManager {
  private readonly tabs = new Map<string, Tab>();
  private readonly streams = new Map<string, string>(); // streamId -> tabId

  constructor(
    private readonly relays: RelayRegistry,
    private readonly keys: KeyStore,
    private readonly consoles: ConsoleManager,
    private readonly autoRenew: () => boolean,
    private readonly emit: (event: DesktopEvent) => void,
    private readonly now: () => number,
    private readonly log: MainLogger,
  ) {}

  private async connect(relayId: string, kind: ConsoleKind, key: KeyPair, console: ConsoleResource, observe = false): Promise<ConsoleConnection> {
    const record = this.relays.relay(relayId);
    const api = await this.relays.api(relayId);
    const endpoint = (await api.endpoints()).find((e) => e.name === record.endpoint);
    if (!endpoint) throw new Error(`The relay has no private endpoint "${record.endpoint}"; choose another in the relay settings.`);
    return ConsoleConnection.open({
      // Where the relay says clients connect (an older relay has no advertiseAddress: its ipAddress is it).
      host: endpoint.advertiseAddress ?? endpoint.ipAddress,
      port: endpoint.sshPort,
      accessId: console.virtualMachineAccessId,
      privateKey: key.privateKey,
      hostKeyFingerprint: record.hostKeyFingerprint,
      kind,
      observe,
    });
  }

  /** Whether the VM's serial port takes a break, as its relay says (false when it cannot be asked). */
  private async serialBreak(api: RelayApi, vm: string): Promise<boolean> {
    const found = await api.virtualMachines().then((vms) => vms.find((v) => v.name === vm)).catch(() => undefined);
    return (found as { serialBreak?: boolean } | undefined)?.serialBreak === true;
  }

  private attach(tabId: string, relayId: string, vm: string, kind: ConsoleKind, connection: ConsoleConnection, console: ConsoleResource, ttlMs: number, serialBreak = false, observe = false): TabView {
    const previous = this.tabs.get(tabId);
    if (previous) {
      clearInterval(previous.renewTimer);
      previous.stopWatching?.();
      this.streams.delete(previous.view.streamId);
    }
    const view: TabView = {
      id: tabId,
      relayId,
      vm,
      kind,
      title: `${vm} — ${kind === 'serial' ? 'serial' : 'VNC'}${observe ? ' (observing)' : ''}`,
      streamId: randomUUID(),
      keyFingerprint: console.keyFingerprint,
      expiresAt: console.expiration,
      ...(kind === 'serial' && { serialBreak: serialBreak && !observe }),
      ...(observe && { role: 'observer' as const }),
    };
    const log = previous?.log ?? this.log.child({ tab: tabId, relay: relayId, vm, kind });
    const tab: Tab = { view, connection, ttlMs, log, observing: observe };
    this.tabs.set(tabId, tab);
    this.streams.set(view.streamId, tabId);
    log.info({ keyFingerprint: console.keyFingerprint, expiresAt: console.expiration }, `${vm}: ${kind} console ${previous ? 'reconnected' : 'opened'}`);
    connection.once('closed', (reason: string) => {
      if (this.tabs.get(tabId)?.connection !== connection) return; // replaced by a reconnect
      clearInterval(tab.renewTimer);
      tab.stopWatching?.();
      log.info({ reason }, `${vm}: ${kind} console closed: ${reason}`);
      this.emit({ type: 'tabClosed', tabId, reason });
    });
    connection.onNotice((line: string) => {
      if (this.tabs.get(tabId)?.connection !== connection) return;
      const meaning = noticeMeaning(line);
      if (!meaning) return;
      if (meaning.role) tab.view.role = meaning.role;
      this.emit({ type: 'consoleNotice', tabId, ...meaning });
    });
    if (kind === 'vnc') tab.stopWatching = watchVncScreen(() => this.relays.api(relayId), vm, (meaning) => this.tabs.get(tabId) === tab && this.emit({ type: 'consoleNotice', tabId, ...meaning }));
    // An observer changes nothing about the console: its owner renews it.
    if (observe) return view;
    tab.renewTimer = setInterval(() => void this.renew(tab), RENEW_CHECK_MS);
    tab.renewTimer.unref();
    return view;
  }

  /** Keeps an open console from expiring: renews when a quarter of its lifetime is left. */
  private async renew(tab: Tab): Promise<void> {
    if (!this.autoRenew() || tab.connection.closed) return;
    const remaining = Date.parse(tab.view.expiresAt) - this.now();
    if (remaining > tab.ttlMs * RENEW_AT_REMAINING_SHARE) return;
    try {
      const api = await this.relays.api(tab.view.relayId);
      const updated = await api.patchConsole(tab.view.vm, { expiration: new Date(this.now() + tab.ttlMs).toISOString() });
      tab.view.expiresAt = updated.expiration;
      tab.log.debug({ expiresAt: updated.expiration }, 'console renewed');
      this.emit({ type: 'consoleRenewed', relayId: tab.view.relayId, vm: tab.view.vm, expiresAt: updated.expiration });
    } catch (error) {
      // Retried on the next tick; the tab shows the relay's reason if the session ends.
      tab.log.debug({ err: (error as Error).message }, 'console renewal failed; retrying');
    }
  }

  async open(relayId: string, vm: string, kind: ConsoleKind, options: OpenConsoleOptions = {}): Promise<TabView> {
    if (options.observe) return this.openObserver(relayId, vm, kind);
    const api = await this.relays.api(relayId);
    const key = await this.keys.keyFor(relayId, vm);
    const ttlMs = await this.consoles.defaultTtlMs(api);
    const console = await this.consoles.readyConsole(api, vm, key, ttlMs, options.replaceKey);
    const connection = await this.connect(relayId, kind, key, console);
    return this.attach(randomUUID(), relayId, vm, kind, connection, console, ttlMs, kind === 'serial' && (await this.serialBreak(api, vm)));
  }

  /** Watching: the console as it is (never created, enabled, renewed or re-keyed), with this app's key if it is the console's. */
  private async openObserver(relayId: string, vm: string, kind: ConsoleKind, tabId: string = randomUUID()): Promise<TabView> {
    const api = await this.relays.api(relayId);
    const console = await api.console(vm);
    if (!console) throw new Error(`${vm} has no console to watch; its owner creates one.`);
    if (console.detailedStatus !== 'Ready') throw new Error(`The console of ${vm} is ${console.detailedStatus.toLowerCase()}: there is no session to watch.`);
    if (console.allowObservers === false) throw new Error(`The console of ${vm} does not allow observers; its owner can allow them (lifeline console update ${vm} --allow-observers true).`);
    const key = await this.keys.keyFor(relayId, vm);
    if (key.fingerprint !== console.keyFingerprint) throw new Error(`Watching ${vm} uses the console's key, and this app does not hold it (the console has ${console.keyFingerprint}); open it from the app that does.`);
    const connection = await this.connect(relayId, kind, key, console, true);
    return this.attach(tabId, relayId, vm, kind, connection, console, 0, false, true);
  }

  /** The relay's escape for a shared console (docs/sharing.md), for a tab's buttons. */
  async control(tabId: string, action: ConsoleControl): Promise<string> {
    const { view, connection } = this.tab(tabId);
    if (view.kind !== 'serial') throw new Error('Control is handed over on a serial console; a VNC screen changes hands by opening it.');
    return connection.control(action);
  }

  private tab(tabId: string): Tab {
    const tab = this.tabs.get(tabId);
    if (!tab) throw new Error('This tab is closed.');
    return tab;
  }

  async reconnect(tabId: string): Promise<TabView> {
    const { view, connection, observing } = this.tab(tabId);
    connection.close('reconnecting');
    if (observing) return this.openObserver(view.relayId, view.vm, view.kind, tabId);
    const api = await this.relays.api(view.relayId);
    const key = await this.keys.keyFor(view.relayId, view.vm);
    const ttlMs = await this.consoles.defaultTtlMs(api);
    const console = await this.consoles.readyConsole(api, view.vm, key, ttlMs);
    const fresh = await this.connect(view.relayId, view.kind, key, console);
    return this.attach(tabId, view.relayId, view.vm, view.kind, fresh, console, ttlMs, view.serialBreak);
  }

  /**
   * One click: a new key, stored in place of the old one first, then the console re-keyed to it
   * (the relay closes the old session), and the tab connected again. If the relay refuses the new
   * key, the old one goes back into the keychain: at no point does the console hold a key nobody has.
   */
  async reconnectWithNewKey(tabId: string): Promise<TabView> {
    const { view, observing } = this.tab(tabId);
    if (observing) throw new Error('A tab that watches does not change the console\'s key: its owner does. Use Reconnect.');
    const api = await this.relays.api(view.relayId);
    this.tab(tabId).log.info({}, `${view.vm}: rotating the console key`);
    const { fresh, result: console } = await this.keys.rotate(view.relayId, view.vm, (key) => api.patchConsole(view.vm, { enabled: true, sshPublicKey: { keyData: key.publicKey } }));
    const connection = await this.connect(view.relayId, view.kind, fresh, console);
    const previous = this.tab(tabId).connection;
    const next = this.attach(tabId, view.relayId, view.vm, view.kind, connection, console, await this.consoles.defaultTtlMs(api), view.serialBreak);
    previous.close('the key was rotated');
    return next;
  }

  async close(tabId: string): Promise<void> {
    const tab = this.tabs.get(tabId);
    if (!tab) return;
    clearInterval(tab.renewTimer);
    tab.stopWatching?.();
    this.tabs.delete(tabId);
    this.streams.delete(tab.view.streamId);
    tab.log.info(`${tab.view.vm}: ${tab.view.kind} console closed by you`);
    tab.connection.close('closed by you');
  }

  /** Closes the tabs of one relay (it is being removed). */
  async closeRelay(relayId: string): Promise<void> {
    for (const tab of [...this.tabs.values()]) if (tab.view.relayId === relayId) await this.close(tab.view.id);
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.tabs.keys()]) await this.close(id);
  }

  resize(tabId: string, cols: number, rows: number): void {
    this.tab(tabId).connection.resize(cols, rows);
  }

  async sendBreak(tabId: string, sysrqKey?: string): Promise<void> {
    const { view, connection } = this.tab(tabId);
    if (view.kind !== 'serial') throw new Error('A break goes to a serial console, not a VNC one.');
    if (!(await connection.sendBreak(sysrqKey))) {
      throw new Error(`The relay did not send the break to ${view.vm}: its serial port has none (it needs a telnet-mode chardev), or the VM is not connected.`);
    }
  }

  /** The byte stream (SSH channel) behind a stream id, for a transport to pipe. */
  stream(streamId: string): Duplex | undefined {
    const tabId = this.streams.get(streamId);
    return tabId ? this.tabs.get(tabId)?.connection.channel : undefined;
  }
}
