/**
 * THE desktop API: what the renderer may ask of main, over Electron IPC (preload) or the
 * browser-mode WebSocket. Names, fingerprints and states only: no key or token ever crosses it.
 */

export type ConsoleKind = 'serial' | 'vnc';
export type ConsoleState = 'none' | 'enabled' | 'disabled' | 'expired';

export interface RelayView {
  id: string;
  name: string;
  url: string;
  embedded: boolean;
  /** SHA256 fingerprint of the pinned SSH host key. */
  hostKeyFingerprint: string;
  /** The private endpoint consoles are opened through. */
  endpoint: string;
  /** SHA-256 of the pinned TLS certificate (`AB:CD:…`) of an https:// relay; absent for http:// or a CA-trusted certificate. */
  tlsFingerprint?: string;
  /** `untrusted`: the relay's TLS certificate is not the pinned one (or no longer trusted); `error` names the fingerprints. */
  status: 'ok' | 'unreachable' | 'unauthorized' | 'untrusted';
  error?: string;
  /** The API token's identity and limits, when the relay reports them (scoped tokens). */
  token?: { name: string; scopes: string[]; virtualMachines?: string[] };
  /** What the token allows on this relay beyond consoles (absent scopes: the control is disabled and says why). */
  allowed: { endpoints: boolean };
}

/** A relay's certificate, shown to the user before it is pinned. */
export interface CertificateView {
  fingerprint: string;
  /** Trusted by the system's CAs for this host name: nothing to pin. */
  trusted: boolean;
  untrustedBecause?: string;
  subject: string;
  validTo: string;
}

/** What the relay can do to a VM's power (`POST …/powerActions`). */
export type PowerAction = 'reset' | 'shutdown' | 'powerOff' | 'powerOn' | 'nmi';

export interface VmView {
  relayId: string;
  relayName: string;
  name: string;
  powerState: string;
  consoleTypes: ConsoleKind[];
  /** Whether the serial port takes a break (SysRq). */
  serialBreak: boolean;
  /** The power actions the VM's backend offers (none from a relay that predates them). */
  powerActions: PowerAction[];
  /** On a fleet gateway: the hypervisor agent the VM is on. */
  agent?: string;
  /** What the relay's API token allows for this VM: `consoles` (consoles:write: open, renew, re-key, disable, delete) and `power`. */
  allowed: { consoles: boolean; power: boolean };
  console: {
    state: ConsoleState;
    expiresAt?: string;
    keyFingerprint?: string;
    /** True when the console's key is the one this app keeps for the VM. */
    ownKey: boolean;
    /** Whether key holders may watch it read-only (docs/sharing.md); absent from older relays. */
    allowObservers?: boolean;
  };
}

export interface EndpointView {
  name: string;
  ipAddress: string;
  sshPort: number;
  vncPort: number;
  allowedSourcePrefixes: string[];
  provisioningState: string;
}

export interface TabView {
  id: string;
  relayId: string;
  vm: string;
  kind: ConsoleKind;
  /** "<vm> — serial" or "<vm> — VNC". */
  title: string;
  /** Attach to this to carry the console's bytes (terminal or RFB). Changes on reconnect. */
  streamId: string;
  keyFingerprint: string;
  expiresAt: string;
  /** Serial tabs: whether the VM's serial port takes a break (SysRq); absent from older relays. */
  serialBreak?: boolean;
  /** How the tab was opened: `observer` watches read-only beside the VM's session (docs/sharing.md); absent: controller. */
  role?: 'controller' | 'observer';
}

/** A session recording of a VM's serial console or screen (docs/recordings.md). */
export interface RecordingView {
  id: string;
  vm: string;
  kind: 'serial' | 'vnc';
  /** A VNC recording's segments (each starts with a full frame, `start` seconds into the recording). */
  segments: Array<{ name: string; start: number }>;
  startedAt: string;
  endedAt?: string;
  /** False while recording, or never sealed (its relay stopped): it plays up to its last checkpoint. */
  complete: boolean;
  participants: Array<{ role: string; remoteAddress: string; path: string }>;
  /** Seconds into the recording. */
  markers: Array<{ time: number; label: string }>;
  onHold: boolean;
}

/** What a tab asks of a shared console (the relay's escapes, docs/sharing.md). */
export type ConsoleControl = 'request' | 'approve' | 'deny' | 'handover';

export interface EmbeddedStatus {
  state: 'starting' | 'running' | 'stopped' | 'unavailable' | 'failed';
  /** Progress or the reason it is unavailable, e.g. what to install. */
  message: string;
}

/** Where keys and API tokens are kept this run. */
export interface KeychainStatus {
  /** `os`: the OS keychain. `memory`: main's memory only, for this run (no usable OS keychain). */
  mode: 'os' | 'memory';
  /** What the user is told, including what follows from it. */
  message: string;
  /** Why the OS keychain is not used (its error). */
  cause?: string;
}

export type ThemeSetting = 'system' | 'light' | 'dark';

/** The app's own settings the UI shows. */
export interface DesktopSettings {
  autoRenew: boolean;
  /** `system` follows the OS (prefers-color-scheme). */
  theme: ThemeSetting;
}

export interface OpenConsoleOptions {
  /**
   * The fingerprint of another key the console holds, which the user agreed to replace with this
   * app's key (that locks out whoever holds it). Without it, such a console is not re-keyed.
   */
  replaceKey?: string;
  /** Watch read-only beside whoever has the console (it must allow observers and hold this app's key); nothing about the console is changed. */
  observe?: boolean;
}

export interface DesktopApi {
  getEmbeddedStatus(): Promise<EmbeddedStatus>;
  getSettings(): Promise<DesktopSettings>;
  getKeychainStatus(): Promise<KeychainStatus>;
  listRelays(): Promise<RelayView[]>;
  /** The TLS certificate an https:// relay presents, to confirm before adding it. */
  inspectCertificate(url: string): Promise<CertificateView>;
  /** `tlsFingerprint`: the certificate to pin (confirmed, pasted, or the output of `lifeline-relay info`). */
  addRelay(input: { name: string; url: string; token: string; tlsFingerprint?: string }): Promise<RelayView>;
  updateRelay(input: { id: string; name?: string; token?: string; endpoint?: string; tlsFingerprint?: string }): Promise<RelayView>;
  removeRelay(id: string): Promise<void>;
  listVms(): Promise<VmView[]>;
  renewConsole(relayId: string, vm: string): Promise<VmView>;
  disableConsole(relayId: string, vm: string): Promise<VmView>;
  deleteConsole(relayId: string, vm: string): Promise<VmView>;
  powerAction(relayId: string, vm: string, action: PowerAction): Promise<VmView>;
  listEndpoints(relayId: string): Promise<EndpointView[]>;
  createEndpoint(relayId: string, input: { name: string; ipAddress?: string; allowedSourcePrefixes?: string[] }): Promise<EndpointView>;
  deleteEndpoint(relayId: string, name: string): Promise<void>;
  openConsole(relayId: string, vm: string, kind: ConsoleKind, options?: OpenConsoleOptions): Promise<TabView>;
  reconnect(tabId: string): Promise<TabView>;
  reconnectWithNewKey(tabId: string): Promise<TabView>;
  closeTab(tabId: string): Promise<void>;
  resizeTerminal(tabId: string, cols: number, rows: number): Promise<void>;
  /** A serial break, then `sysrqKey` (one letter or digit) when given. */
  sendBreak(tabId: string, sysrqKey?: string): Promise<void>;
  /** Asks for control, answers a request, or hands control over on a shared serial console; the relay's answer arrives as a consoleNotice. */
  consoleControl(tabId: string, action: ConsoleControl): Promise<string>;
  /** The VM's recordings, newest first (the relay's token needs the recordings scope). */
  listRecordings(relayId: string, vm: string): Promise<RecordingView[]>;
  /** A recording's serial output as asciicast v2 text, for playback and export. */
  recordingCast(relayId: string, id: string): Promise<string>;
  /** One segment of a VNC recording, base64 (lifeline-rfb/1, docs/recordings.md#vnc-segments). */
  recordingSegment(relayId: string, id: string, segment: string): Promise<string>;
  setAutoRenew(enabled: boolean): Promise<void>;
  setTheme(theme: ThemeSetting): Promise<void>;
}

/** Pushed from main to the renderer. */
export type DesktopEvent =
  | { type: 'tabClosed'; tabId: string; reason: string }
  | { type: 'embeddedStatus'; status: EmbeddedStatus }
  | { type: 'keychainStatus'; status: KeychainStatus }
  | { type: 'consoleRenewed'; relayId: string; vm: string; expiresAt: string }
  /** A line the relay sent a tab outside the console's stream (joins, leaves, control changes, recording), with what it means for the tab. */
  | { type: 'consoleNotice'; tabId: string; text: string; role?: 'controller' | 'observer'; recorded?: boolean; controlRequested?: boolean };

export const DESKTOP_API_METHODS = [
  'getEmbeddedStatus',
  'getSettings',
  'getKeychainStatus',
  'listRelays',
  'inspectCertificate',
  'addRelay',
  'updateRelay',
  'removeRelay',
  'listVms',
  'renewConsole',
  'disableConsole',
  'deleteConsole',
  'powerAction',
  'listEndpoints',
  'createEndpoint',
  'deleteEndpoint',
  'openConsole',
  'reconnect',
  'reconnectWithNewKey',
  'closeTab',
  'resizeTerminal',
  'sendBreak',
  'consoleControl',
  'listRecordings',
  'recordingCast',
  'recordingSegment',
  'setAutoRenew',
  'setTheme',
] as const satisfies ReadonlyArray<keyof DesktopApi>;

/** Every method of DesktopApi is listed above: a missing one fails type-checking here. */
type Missing = Exclude<keyof DesktopApi, (typeof DESKTOP_API_METHODS)[number]>;
export const NO_METHOD_IS_MISSING: Missing extends never ? true : never = true;

/** What a preload or browser transport gives the renderer: the API, events, and byte streams. */
export interface DesktopBridge {
  api: DesktopApi;
  onEvent(listener: (event: DesktopEvent) => void): () => void;
  /** Opens the byte stream of a tab; binary both ways, with flow control underneath. */
  openStream(streamId: string): Promise<ByteStream>;
}

/** A WebSocket-shaped duplex, which noVNC accepts as its channel and xterm can drive. */
export interface ByteStream {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  send(data: ArrayBuffer | Uint8Array | string): void;
  close(): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: ArrayBuffer }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** The channel names between preload and main. */
export const IPC = { call: 'lifeline:call', event: 'lifeline:event', openStream: 'lifeline:open-stream', stream: 'lifeline:stream' } as const;

/** Flow control for terminal and VNC bytes over a MessagePort: main stops reading the SSH
 * channel while more than this many bytes are unacknowledged by the renderer. */
export const STREAM_WINDOW_BYTES = 1024 * 1024;

/** Messages on a stream's MessagePort. */
export type StreamMessage =
  | { type: 'data'; data: Uint8Array }
  | { type: 'ack'; bytes: number }
  | { type: 'close'; reason: string };

/** What the Electron preload exposes as `window.lifelinePreload` (functions only, as contextBridge allows). */
export interface PreloadApi {
  call(method: string, args: unknown[]): Promise<unknown>;
  onEvent(listener: (event: DesktopEvent) => void): () => void;
  /** Opens a stream; main answers with a MessagePort that `onPort` receives. */
  openStream(streamId: string, onMessage: (message: StreamMessage) => void): Promise<{ send: (message: StreamMessage) => void; close: () => void }>;
}
