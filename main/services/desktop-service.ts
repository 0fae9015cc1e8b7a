import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { CertificateView, ConsoleControl, ConsoleKind, DesktopApi, DesktopEvent, DesktopSettings, EmbeddedStatus, EndpointView, KeychainStatus, OpenConsoleOptions, PowerAction, RecordingView, RelayView, TabView, ThemeSetting, VmView } from '../../preload/contract.js';
import { ConsoleManager } from '../consoles/console-manager.js';
import { TabManager } from '../consoles/tab-manager.js';
import { KeyStore } from '../keys/key-store.js';
import { RelayRegistry } from '../relays/relay-registry.js';
import { OS_KEYCHAIN_STATUS, type Keychain } from './keychain.js';
import pino from 'pino';
import type { MainLogger } from './main-log.js';
import { TrustStore } from './relay-tls.js';
import type { SettingsFile } from './settings.js';

export { KeyConflictError } from '../consoles/console-manager.js';

/**
 * Everything the desktop app does, as plain Node, behind the `DesktopApi` contract that the
 * Electron IPC shell and browser mode both serve. A façade over the parts, each of which knows
 * nothing above it: the relay registry (relays, tokens, pins), the key store (console keys in
 * the keychain), the console manager (VMs and their Console resources) and the tab manager (open
 * consoles and their streams); settings and status are kept here.
 */
export class DesktopService implements DesktopApi {
  readonly events = new EventEmitter();
  private embeddedStatus: EmbeddedStatus = { state: 'stopped', message: 'The embedded relay is not started.' };
  private keychainStatus: KeychainStatus = OS_KEYCHAIN_STATUS;
  private readonly relays: RelayRegistry;
  private readonly keys: KeyStore;
  private readonly consoles: ConsoleManager;
  private readonly tabs: TabManager;

  constructor(
    keychain: Keychain,
    private readonly settings: SettingsFile,
    now: () => number = Date.now,
    trust: TrustStore = new TrustStore(),
    log: MainLogger = pino({ level: 'silent' }),
  ) {
    const emit = (event: DesktopEvent): void => this.emit(event);
    this.relays = new RelayRegistry(keychain, settings, () => this.keychainStatus, trust);
    this.keys = new KeyStore(keychain);
    this.consoles = new ConsoleManager(this.relays, this.keys, emit, now);
    this.tabs = new TabManager(this.relays, this.keys, this.consoles, () => this.settings.get().autoRenew, emit, now, log);
  }

  private emit(event: DesktopEvent): void {
    this.events.emit('event', event);
  }

  // --- status and settings ---------------------------------------------------------------

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

  // --- relays ----------------------------------------------------------------------------

  inspectCertificate(url: string): Promise<CertificateView> {
    return this.relays.inspectCertificate(url);
  }

  listRelays(): Promise<RelayView[]> {
    return this.relays.list();
  }

  registerRelay(input: { name: string; url: string; token: string; embedded: boolean; hostKeyGiven?: string; tlsFingerprint?: string }): Promise<RelayView> {
    return this.relays.register(input);
  }

  addRelay(input: { name: string; url: string; token: string; tlsFingerprint?: string }): Promise<RelayView> {
    return this.relays.register({ ...input, embedded: false, ...(input.tlsFingerprint?.trim() ? { tlsFingerprint: input.tlsFingerprint } : {}) });
  }

  updateRelay(input: { id: string; name?: string; token?: string; endpoint?: string; tlsFingerprint?: string }): Promise<RelayView> {
    return this.relays.update(input);
  }

  /** Closes the relay's tabs, then forgets its keys, its token and the relay. */
  async removeRelay(id: string): Promise<void> {
    this.relays.relay(id);
    await this.tabs.closeRelay(id);
    await this.keys.deleteRelay(id);
    await this.relays.remove(id);
  }

  // --- VMs and consoles ------------------------------------------------------------------

  listVms(): Promise<VmView[]> {
    return this.consoles.listVms();
  }

  renewConsole(relayId: string, vm: string): Promise<VmView> {
    return this.consoles.renewConsole(relayId, vm);
  }

  powerAction(relayId: string, vm: string, action: PowerAction): Promise<VmView> {
    return this.consoles.powerAction(relayId, vm, action);
  }

  disableConsole(relayId: string, vm: string): Promise<VmView> {
    return this.consoles.disableConsole(relayId, vm);
  }

  deleteConsole(relayId: string, vm: string): Promise<VmView> {
    return this.consoles.deleteConsole(relayId, vm);
  }

  // --- tabs ------------------------------------------------------------------------------

  openConsole(relayId: string, vm: string, kind: ConsoleKind, options: OpenConsoleOptions = {}): Promise<TabView> {
    return this.tabs.open(relayId, vm, kind, options);
  }

  reconnect(tabId: string): Promise<TabView> {
    return this.tabs.reconnect(tabId);
  }

  reconnectWithNewKey(tabId: string): Promise<TabView> {
    return this.tabs.reconnectWithNewKey(tabId);
  }

  closeTab(tabId: string): Promise<void> {
    return this.tabs.close(tabId);
  }

  async resizeTerminal(tabId: string, cols: number, rows: number): Promise<void> {
    this.tabs.resize(tabId, cols, rows);
  }

  sendBreak(tabId: string, sysrqKey?: string): Promise<void> {
    return this.tabs.sendBreak(tabId, sysrqKey);
  }

  consoleControl(tabId: string, action: ConsoleControl): Promise<string> {
    return this.tabs.control(tabId, action);
  }

  async listRecordings(relayId: string, vm: string): Promise<RecordingView[]> {
    const recordings = await (await this.relays.api(relayId)).recordings(vm);
    return recordings.map((r) => ({
      id: r.id,
      vm: r.virtualMachine,
      kind: r.kind,
      segments: r.kind === 'vnc' ? r.segments.map((segment) => ({ name: segment.name, start: segment.start ?? 0 })) : [],
      startedAt: r.startedAt,
      ...(r.endedAt && { endedAt: r.endedAt }),
      complete: r.complete,
      participants: r.participants.map((p) => ({ role: p.role, remoteAddress: p.remoteAddress, path: p.path })),
      markers: r.markers,
      onHold: r.hold !== undefined,
    }));
  }

  async recordingCast(relayId: string, id: string): Promise<string> {
    return (await this.relays.api(relayId)).recordingCast(id);
  }

  async recordingSegment(relayId: string, id: string, segment: string): Promise<string> {
    return (await (await this.relays.api(relayId)).recordingSegment(id, segment)).toString('base64');
  }

  // --- endpoints -------------------------------------------------------------------------

  async listEndpoints(relayId: string): Promise<EndpointView[]> {
    return (await this.relays.api(relayId)).endpoints();
  }

  async createEndpoint(relayId: string, input: { name: string; ipAddress?: string; allowedSourcePrefixes?: string[] }): Promise<EndpointView> {
    const { name, ...body } = input;
    return (await this.relays.api(relayId)).putEndpoint(name, body);
  }

  async deleteEndpoint(relayId: string, name: string): Promise<void> {
    if (this.relays.relay(relayId).endpoint === name) throw new Error(`Consoles of this relay open through "${name}"; choose another endpoint first.`);
    await (await this.relays.api(relayId)).deleteEndpoint(name);
  }

  // --- streams for the transports --------------------------------------------------------

  /** The byte stream (SSH channel) behind a stream id, for a transport to pipe. */
  stream(streamId: string): Duplex | undefined {
    return this.tabs.stream(streamId);
  }

  async close(): Promise<void> {
    await this.tabs.closeAll();
  }
}
