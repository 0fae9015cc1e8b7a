import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { ConsoleResource, RelayInfo } from '@lifeline/relay/client';
import type { CertificateView, ConsoleKind, DesktopApi, DesktopEvent, DesktopSettings, EmbeddedStatus, EndpointView, KeychainStatus, OpenConsoleOptions, PowerAction, RelayView, TabView, ThemeSetting, VmView } from '../../preload/contract.js';
import { ConsoleConnection } from './console-connection.js';
import { keyAccount, OS_KEYCHAIN_STATUS, tokenAccount, type Keychain } from './keychain.js';
import { RelayApi, RelayApiError } from './relay-api.js';
import { inspectCertificate, parseFingerprint } from './relay-tls.js';
import type { RelayRecord, SettingsFile } from './settings.js';
import { describePrivateKey, generateKeyPair, type KeyPair } from './ssh-keys.js';

/** The console holds a key this app does not have; re-keying it needs the user's say-so. */
export class KeyConflictError extends Error {
  override name = 'KeyConflictError';

  constructor(
    readonly vm: string,
    readonly keyFingerprint: string,
  ) {
    super(`The console of ${vm} holds another key (${keyFingerprint}), not this app's. Opening it replaces that key and locks out whoever holds it; confirm to replace it.`);
  }
}

/** No API token is kept for a relay (removed from the keychain, or not kept without one). */
class MissingTokenError extends Error {
  override name = 'MissingTokenError';
}

/** Renew when less than this share of the console's lifetime is left (and at least this long before expiry). */
const RENEW_AT_REMAINING_SHARE = 0.25;
const RENEW_CHECK_MS = 1000;

interface Tab {
  view: TabView;
  connection: ConsoleConnection;
  renewTimer?: NodeJS.Timeout;
  ttlMs: number;
}

/**
 * Everything the desktop app does, as plain Node: relays, keys in the keychain, Console
 * resources, SSH connections, tabs. Both the Electron IPC shell and browser mode serve it.
 */
export class DesktopService implements DesktopApi {
  readonly events = new EventEmitter();
  private readonly tabs = new Map<string, Tab>();
  private readonly streams = new Map<string, string>(); // streamId -> tabId
  private embeddedStatus: EmbeddedStatus = { state: 'stopped', message: 'The embedded relay is not started.' };
  private keychainStatus: KeychainStatus = OS_KEYCHAIN_STATUS;

  constructor(
    private readonly keychain: Keychain,
    private readonly settings: SettingsFile,
    private readonly now: () => number = Date.now,
  ) {}

  private emit(event: DesktopEvent): void {
    this.events.emit('event', event);
  }

  setEmbeddedStatus(status: EmbeddedStatus): void {
    this.embeddedStatus = status;
    this.emit({ type: 'embeddedStatus', status });
  }

  async getEmbeddedStatus(): Promise<EmbeddedStatus> {
    return this.embeddedStatus;
  }

  setKeychainStatus(status: KeychainStatus): void {
    this.keychainStatus = status;
    this.emit({ type: 'keychainStatus', status });
  }

  async getKeychainStatus(): Promise<KeychainStatus> {
    return this.keychainStatus;
  }

  async getSettings(): Promise<DesktopSettings> {
    const { autoRenew, theme } = this.settings.get();
    return { autoRenew, theme };
  }

  // --- relays -------------------------------------------------------------------------

  private relay(id: string): RelayRecord {
    const record = this.settings.get().relays.find((r) => r.id === id);
    if (!record) throw new Error(`No relay with id ${id}; it may have been removed.`);
    return record;
  }

  private async api(relayId: string): Promise<RelayApi> {
    const record = this.relay(relayId);
    const token = await this.keychain.get(tokenAccount(relayId));
    if (!token) {
      throw new MissingTokenError(
        this.keychainStatus.mode === 'memory'
          ? `No API token for the relay "${record.name}": without an OS keychain it was not kept from the last run. Edit the relay and enter its token again.`
          : `No API token for the relay "${record.name}" in the keychain; edit the relay to enter it again.`,
      );
    }
    return new RelayApi(record.url, token, record.tlsFingerprint);
  }

  /** The token each relay last said this app holds (scopes, VM limits), to offer only what it allows. */
  private readonly callers = new Map<string, NonNullable<RelayInfo['caller']>>();

  private readonly callerRequests = new Map<string, Promise<RelayApi>>();

  private noteCaller(relayId: string, info: RelayInfo): void {
    if (info.caller) this.callers.set(relayId, info.caller);
    else this.callers.delete(relayId);
  }

  /**
   * Asks the relay what this app's token may do, and returns the API client it used. Asks made
   * at the same time share one request: the window's refresh lists relays and VMs together,
   * and both want the answer.
   */
  private refreshCaller(relayId: string): Promise<RelayApi> {
    let pending = this.callerRequests.get(relayId);
    if (!pending) {
      pending = (async () => {
        const api = await this.api(relayId);
        this.noteCaller(relayId, await api.info());
        return api;
      })().finally(() => this.callerRequests.delete(relayId));
      this.callerRequests.set(relayId, pending);
    }
    return pending;
  }

  /** Whether the relay's token has `scope` (relays from before scoped tokens: every token is an admin token). */
  private allows(relayId: string, scope: NonNullable<RelayInfo['caller']>['scopes'][number]): boolean {
    const caller = this.callers.get(relayId);
    return !caller || caller.scopes.includes('admin') || caller.scopes.includes(scope);
  }

  private async view(record: RelayRecord): Promise<RelayView> {
    const base = {
      id: record.id,
      name: record.name,
      url: record.url,
      embedded: record.embedded,
      hostKeyFingerprint: record.hostKeyFingerprint,
      endpoint: record.endpoint,
      ...(record.tlsFingerprint && { tlsFingerprint: record.tlsFingerprint }),
    };
    try {
      await this.refreshCaller(record.id);
      const caller = this.callers.get(record.id);
      return {
        ...base,
        status: 'ok',
        ...(caller && { token: { name: caller.name, scopes: caller.scopes, ...(caller.virtualMachines && { virtualMachines: caller.virtualMachines }) } }),
        allowed: { endpoints: this.allows(record.id, 'endpoints') },
      };
    } catch (error) {
      const refused = (error instanceof RelayApiError && error.status === 401) || error instanceof MissingTokenError;
      const untrusted = error instanceof RelayApiError && (error.code === 'TlsCertificateChanged' || error.code === 'TlsUntrusted');
      return { ...base, status: untrusted ? 'untrusted' : refused ? 'unauthorized' : 'unreachable', error: (error as Error).message, allowed: { endpoints: false } };
    }
  }

  async inspectCertificate(url: string): Promise<CertificateView> {
    const parsed = this.relayUrl(url);
    if (!parsed.startsWith('https://')) throw new Error(`${parsed} is plain HTTP: there is no certificate to check. Use https:// if the relay has TLS on.`);
    try {
      return await inspectCertificate(parsed);
    } catch (error) {
      throw new Error(`Cannot reach the relay at ${parsed} over TLS (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`, { cause: error });
    }
  }

  private relayUrl(input: string): string {
    const url = input.trim().replace(/\/+$/, '');
    if (!/^https?:\/\/[^\s/]+$/.test(url)) throw new Error(`"${input}" is not a relay API URL such as https://relay.example:8440 or http://127.0.0.1:8440`);
    return url;
  }

  /**
   * Which certificate to pin for an https:// relay: the one the user confirmed or pasted (it must be
   * the one presented), the one already pinned, or none when the system's CAs trust it.
   */
  private async tlsPin(url: string, given: string | undefined, existing: string | undefined): Promise<string | undefined> {
    if (!url.startsWith('https://')) return undefined;
    const presented = await this.inspectCertificate(url);
    if (given !== undefined) {
      const wanted = parseFingerprint(given);
      if (!wanted) throw new Error('The certificate fingerprint should be 32 hex pairs (AB:CD:…), as "lifeline-relay info" prints it; paste its output or the fingerprint.');
      if (wanted !== presented.fingerprint) {
        throw new Error(`The relay presents the TLS certificate ${presented.fingerprint}, not the ${wanted} you gave. Lifeline refuses it: check the fingerprint with "lifeline-relay info" on the relay.`);
      }
      return wanted;
    }
    if (existing !== undefined) return existing;
    if (presented.trusted) return undefined;
    throw new Error(`The relay's TLS certificate is not trusted by this system (${presented.untrustedBecause}); confirm its fingerprint ${presented.fingerprint} to pin it.`);
  }

  async listRelays(): Promise<RelayView[]> {
    return Promise.all(this.settings.get().relays.map((record) => this.view(record)));
  }

  /** Adds (or, for the embedded relay, re-registers) a relay: checks the token, pins the host key. */
  /**
   * `hostKeyGiven`: the fingerprint of a host key this app gave the relay itself (the embedded relay
   * without an OS keychain gets a new one each run); it replaces the pin instead of being refused.
   */
  async registerRelay(input: { name: string; url: string; token: string; embedded: boolean; hostKeyGiven?: string; tlsFingerprint?: string }): Promise<RelayView> {
    const url = this.relayUrl(input.url);
    const known = this.settings.get().relays.find((r) => r.url === url);
    const pin = await this.tlsPin(url, input.tlsFingerprint, known?.tlsFingerprint);
    const info = await new RelayApi(url, input.token.trim(), pin).info();
    const hostKey = info.sshHostKeys[0]?.fingerprint;
    if (!hostKey) throw new Error('The relay reported no SSH host key.');
    const existing = this.settings.get().relays.find((r) => r.id === info.id);
    if (input.hostKeyGiven !== undefined && input.hostKeyGiven !== hostKey) {
      throw new Error(`The embedded relay presents the SSH host key ${hostKey}, not the ${input.hostKeyGiven} it was started with.`);
    }
    if (existing && existing.hostKeyFingerprint !== hostKey && input.hostKeyGiven === undefined) {
      throw new Error(
        `The relay ${info.id} now presents the SSH host key ${hostKey}, not the pinned ${existing.hostKeyFingerprint}. ` +
          'Lifeline refuses it, as OpenSSH would. If the relay was reinstalled, remove it and add it again.',
      );
    }
    await this.keychain.set(tokenAccount(info.id), input.token.trim());
    const record: RelayRecord = {
      id: info.id,
      name: input.name.trim() || url,
      url,
      embedded: input.embedded,
      hostKeyFingerprint: hostKey,
      endpoint: existing?.endpoint ?? 'default',
      ...(pin && { tlsFingerprint: pin }),
    };
    this.settings.update((s) => {
      s.relays = [...s.relays.filter((r) => r.id !== info.id), record];
    });
    return this.view(record);
  }

  addRelay(input: { name: string; url: string; token: string; tlsFingerprint?: string }): Promise<RelayView> {
    return this.registerRelay({ ...input, embedded: false, ...(input.tlsFingerprint?.trim() ? { tlsFingerprint: input.tlsFingerprint } : {}) });
  }

  async updateRelay(input: { id: string; name?: string; token?: string; endpoint?: string; tlsFingerprint?: string }): Promise<RelayView> {
    let record = this.relay(input.id);
    if (input.tlsFingerprint?.trim()) {
      // A replaced certificate: the user checked the new fingerprint on the relay. It must be what the relay presents,
      // and the relay behind it must be the same one (same id, same SSH host key).
      const pin = await this.tlsPin(record.url, input.tlsFingerprint, undefined);
      const token = input.token?.trim() || (await this.keychain.get(tokenAccount(record.id)));
      if (token) {
        const info = await new RelayApi(record.url, token, pin).info();
        if (info.id !== record.id) throw new Error(`The relay at ${record.url} is now another relay (id ${info.id}); remove this one and add it again.`);
        if (info.sshHostKeys[0]?.fingerprint !== record.hostKeyFingerprint) {
          throw new Error(`The relay at ${record.url} now presents the SSH host key ${info.sshHostKeys[0]?.fingerprint}, not the pinned ${record.hostKeyFingerprint}; remove it and add it again.`);
        }
      }
      record = { ...record, tlsFingerprint: pin };
    }
    if (input.token !== undefined) {
      await new RelayApi(record.url, input.token.trim(), record.tlsFingerprint).info();
      await this.keychain.set(tokenAccount(record.id), input.token.trim());
    }
    if (input.endpoint !== undefined) {
      const endpoints = await (await this.api(record.id)).endpoints();
      if (!endpoints.some((e) => e.name === input.endpoint)) throw new Error(`The relay has no private endpoint "${input.endpoint}".`);
    }
    const next = { ...record, ...(input.name !== undefined && { name: input.name.trim() || record.name }), ...(input.endpoint !== undefined && { endpoint: input.endpoint }) };
    this.settings.update((s) => {
      s.relays = s.relays.map((r) => (r.id === record.id ? next : r));
    });
    return this.view(next);
  }

  async removeRelay(id: string): Promise<void> {
    this.relay(id);
    for (const tab of [...this.tabs.values()]) if (tab.view.relayId === id) await this.closeTab(tab.view.id);
    for (const account of await this.keychain.accounts()) {
      if (account === tokenAccount(id) || account.startsWith(`key:${id}:`)) await this.keychain.delete(account);
    }
    this.settings.update((s) => {
      s.relays = s.relays.filter((r) => r.id !== id);
    });
  }

  // --- VMs and consoles ---------------------------------------------------------------

  private async ownKey(relayId: string, vm: string): Promise<KeyPair | undefined> {
    const stored = await this.keychain.get(keyAccount(relayId, vm));
    return stored ? describePrivateKey(stored) : undefined;
  }

  private async vmView(relayId: string, vm: { name: string; powerState: string; consoleTypes: ConsoleKind[]; powerActions?: PowerAction[]; serialBreak?: boolean; console?: ConsoleResource }): Promise<VmView> {
    const record = this.relay(relayId);
    const own = await this.ownKey(relayId, vm.name);
    const c = vm.console;
    const state = !c ? 'none' : c.detailedStatus === 'Disabled' ? 'disabled' : c.detailedStatus === 'Expired' ? 'expired' : 'enabled';
    return {
      relayId,
      relayName: record.name,
      name: vm.name,
      powerState: vm.powerState,
      consoleTypes: vm.consoleTypes,
      powerActions: vm.powerActions ?? [],
      serialBreak: vm.serialBreak === true,
      allowed: { consoles: this.allows(relayId, 'consoles:write'), power: this.allows(relayId, 'power') },
      console: { state, expiresAt: c?.expiration, keyFingerprint: c?.keyFingerprint, ownKey: Boolean(c && own && own.fingerprint === c.keyFingerprint) },
    };
  }

  async listVms(): Promise<VmView[]> {
    const views: VmView[] = [];
    for (const record of this.settings.get().relays) {
      let vms;
      try {
        const api = await this.refreshCaller(record.id);
        vms = await api.virtualMachines();
      } catch {
        continue; // listRelays says why
      }
      for (const vm of vms) views.push(await this.vmView(record.id, vm));
    }
    return views;
  }

  private async vmAfter(relayId: string, vm: string): Promise<VmView> {
    const found = (await (await this.api(relayId)).virtualMachines()).find((v) => v.name === vm);
    if (!found) throw new Error(`The relay has no VM named ${vm}.`);
    return this.vmView(relayId, found);
  }

  private async defaultTtlMs(api: RelayApi): Promise<number> {
    return (await api.info()).consoleDefaults.defaultTtlSeconds * 1000;
  }

  async renewConsole(relayId: string, vm: string): Promise<VmView> {
    const api = await this.api(relayId);
    const expiration = new Date(this.now() + (await this.defaultTtlMs(api))).toISOString();
    const updated = await api.patchConsole(vm, { expiration });
    this.emit({ type: 'consoleRenewed', relayId, vm, expiresAt: updated.expiration });
    return this.vmAfter(relayId, vm);
  }

  async powerAction(relayId: string, vm: string, action: PowerAction): Promise<VmView> {
    await (await this.api(relayId)).powerAction(vm, action);
    return this.vmAfter(relayId, vm);
  }

  async disableConsole(relayId: string, vm: string): Promise<VmView> {
    await (await this.api(relayId)).patchConsole(vm, { enabled: false });
    return this.vmAfter(relayId, vm);
  }

  async deleteConsole(relayId: string, vm: string): Promise<VmView> {
    await (await this.api(relayId)).deleteConsole(vm);
    await this.keychain.delete(keyAccount(relayId, vm));
    return this.vmAfter(relayId, vm);
  }

  /**
   * Makes the console usable with our key: creates it, enables it or renews it as needed. A
   * console holding another key is re-keyed only when the user agreed to replace exactly that key
   * (`replaceKey`): re-keying locks out whoever holds it.
   */
  private async readyConsole(api: RelayApi, vm: string, key: KeyPair, ttlMs: number, replaceKey?: string): Promise<ConsoleResource> {
    const current = await api.console(vm);
    const keyData = key.publicKey;
    if (!current) return api.putConsole(vm, { enabled: true, sshPublicKey: { keyData } });
    if (current.keyFingerprint !== key.fingerprint && current.keyFingerprint !== replaceKey) throw new KeyConflictError(vm, current.keyFingerprint);
    const remaining = Date.parse(current.expiration) - this.now();
    const change: { enabled?: boolean; sshPublicKey?: { keyData: string }; expiration?: string } = {};
    if (!current.enabled) change.enabled = true;
    if (current.keyFingerprint !== key.fingerprint) change.sshPublicKey = { keyData };
    if (remaining < ttlMs * RENEW_AT_REMAINING_SHARE) change.expiration = new Date(this.now() + ttlMs).toISOString();
    return Object.keys(change).length > 0 ? api.patchConsole(vm, change) : current;
  }

  private async keyFor(relayId: string, vm: string): Promise<KeyPair> {
    const own = await this.ownKey(relayId, vm);
    if (own) return own;
    const fresh = generateKeyPair();
    await this.keychain.set(keyAccount(relayId, vm), fresh.privateKey);
    return fresh;
  }

  private async connect(relayId: string, vm: string, kind: ConsoleKind, key: KeyPair, console: ConsoleResource): Promise<ConsoleConnection> {
    const record = this.relay(relayId);
    const api = await this.api(relayId);
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
    });
  }

  /** Whether the VM's serial port takes a break, as its relay says (false when it cannot be asked). */
  private async serialBreak(api: RelayApi, vm: string): Promise<boolean> {
    const found = await api.virtualMachines().then((vms) => vms.find((v) => v.name === vm)).catch(() => undefined);
    return (found as { serialBreak?: boolean } | undefined)?.serialBreak === true;
  }

  private attach(tabId: string, relayId: string, vm: string, kind: ConsoleKind, connection: ConsoleConnection, console: ConsoleResource, ttlMs: number, serialBreak = false): TabView {
    const previous = this.tabs.get(tabId);
    if (previous) {
      clearInterval(previous.renewTimer);
      this.streams.delete(previous.view.streamId);
    }
    const view: TabView = {
      id: tabId,
      relayId,
      vm,
      kind,
      title: `${vm} — ${kind === 'serial' ? 'serial' : 'VNC'}`,
      streamId: randomUUID(),
      keyFingerprint: console.keyFingerprint,
      expiresAt: console.expiration,
      ...(kind === 'serial' && { serialBreak }),
    };
    const tab: Tab = { view, connection, ttlMs };
    this.tabs.set(tabId, tab);
    this.streams.set(view.streamId, tabId);
    connection.once('closed', (reason: string) => {
      if (this.tabs.get(tabId)?.connection !== connection) return; // replaced by a reconnect
      clearInterval(tab.renewTimer);
      this.emit({ type: 'tabClosed', tabId, reason });
    });
    tab.renewTimer = setInterval(() => void this.autoRenew(tab), RENEW_CHECK_MS);
    tab.renewTimer.unref();
    return view;
  }

  /** Keeps an open console from expiring: renews when a quarter of its lifetime is left. */
  private async autoRenew(tab: Tab): Promise<void> {
    if (!this.settings.get().autoRenew || tab.connection.closed) return;
    const remaining = Date.parse(tab.view.expiresAt) - this.now();
    if (remaining > tab.ttlMs * RENEW_AT_REMAINING_SHARE) return;
    try {
      const api = await this.api(tab.view.relayId);
      const updated = await api.patchConsole(tab.view.vm, { expiration: new Date(this.now() + tab.ttlMs).toISOString() });
      tab.view.expiresAt = updated.expiration;
      this.emit({ type: 'consoleRenewed', relayId: tab.view.relayId, vm: tab.view.vm, expiresAt: updated.expiration });
    } catch {
      // Retried on the next tick; the tab shows the relay's reason if the session ends.
    }
  }

  async openConsole(relayId: string, vm: string, kind: ConsoleKind, options: OpenConsoleOptions = {}): Promise<TabView> {
    const api = await this.api(relayId);
    const key = await this.keyFor(relayId, vm);
    const ttlMs = await this.defaultTtlMs(api);
    const console = await this.readyConsole(api, vm, key, ttlMs, options.replaceKey);
    const connection = await this.connect(relayId, vm, kind, key, console);
    return this.attach(randomUUID(), relayId, vm, kind, connection, console, ttlMs, kind === 'serial' && (await this.serialBreak(api, vm)));
  }

  private tab(tabId: string): Tab {
    const tab = this.tabs.get(tabId);
    if (!tab) throw new Error('This tab is closed.');
    return tab;
  }

  async reconnect(tabId: string): Promise<TabView> {
    const { view, connection } = this.tab(tabId);
    connection.close('reconnecting');
    const api = await this.api(view.relayId);
    const key = await this.keyFor(view.relayId, view.vm);
    const ttlMs = await this.defaultTtlMs(api);
    const console = await this.readyConsole(api, view.vm, key, ttlMs);
    const fresh = await this.connect(view.relayId, view.vm, view.kind, key, console);
    return this.attach(tabId, view.relayId, view.vm, view.kind, fresh, console, ttlMs, view.serialBreak);
  }

  /**
   * One click: a new key, stored in place of the old one first, then the console re-keyed to it
   * (the relay closes the old session), and the tab connected again. If the relay refuses the new
   * key, the old one goes back into the keychain: at no point does the console hold a key nobody has.
   */
  async reconnectWithNewKey(tabId: string): Promise<TabView> {
    const { view } = this.tab(tabId);
    const api = await this.api(view.relayId);
    const fresh = generateKeyPair();
    const account = keyAccount(view.relayId, view.vm);
    const previousKey = await this.keychain.get(account);
    await this.keychain.set(account, fresh.privateKey);
    let console: ConsoleResource;
    try {
      console = await api.patchConsole(view.vm, { enabled: true, sshPublicKey: { keyData: fresh.publicKey } });
    } catch (error) {
      await (previousKey === undefined ? this.keychain.delete(account) : this.keychain.set(account, previousKey));
      throw error;
    }
    const connection = await this.connect(view.relayId, view.vm, view.kind, fresh, console);
    const previous = this.tab(tabId).connection;
    const next = this.attach(tabId, view.relayId, view.vm, view.kind, connection, console, await this.defaultTtlMs(api), view.serialBreak);
    previous.close('the key was rotated');
    return next;
  }

  async closeTab(tabId: string): Promise<void> {
    const tab = this.tabs.get(tabId);
    if (!tab) return;
    clearInterval(tab.renewTimer);
    this.tabs.delete(tabId);
    this.streams.delete(tab.view.streamId);
    tab.connection.close('closed by you');
  }

  async resizeTerminal(tabId: string, cols: number, rows: number): Promise<void> {
    this.tab(tabId).connection.resize(cols, rows);
  }

  async sendBreak(tabId: string, sysrqKey?: string): Promise<void> {
    const { view, connection } = this.tab(tabId);
    if (view.kind !== 'serial') throw new Error('A break goes to a serial console, not a VNC one.');
    if (!(await connection.sendBreak(sysrqKey))) {
      throw new Error(`The relay did not send the break to ${view.vm}: its serial port has none (it needs a telnet-mode chardev), or the VM is not connected.`);
    }
  }

  async setAutoRenew(enabled: boolean): Promise<void> {
    this.settings.update((s) => {
      s.autoRenew = enabled;
    });
  }

  async setTheme(theme: ThemeSetting): Promise<void> {
    this.settings.update((s) => {
      s.theme = theme;
    });
  }

  // --- endpoints ----------------------------------------------------------------------

  async listEndpoints(relayId: string): Promise<EndpointView[]> {
    return (await this.api(relayId)).endpoints();
  }

  async createEndpoint(relayId: string, input: { name: string; ipAddress?: string; allowedSourcePrefixes?: string[] }): Promise<EndpointView> {
    const { name, ...body } = input;
    return (await this.api(relayId)).putEndpoint(name, body);
  }

  async deleteEndpoint(relayId: string, name: string): Promise<void> {
    if (this.relay(relayId).endpoint === name) throw new Error(`Consoles of this relay open through "${name}"; choose another endpoint first.`);
    await (await this.api(relayId)).deleteEndpoint(name);
  }

  // --- streams for the transports -----------------------------------------------------

  /** The byte stream (SSH channel) behind a stream id, for a transport to pipe. */
  stream(streamId: string): Duplex | undefined {
    const tabId = this.streams.get(streamId);
    return tabId ? this.tabs.get(tabId)?.connection.channel : undefined;
  }

  async close(): Promise<void> {
    for (const id of [...this.tabs.keys()]) await this.closeTab(id);
  }
}
