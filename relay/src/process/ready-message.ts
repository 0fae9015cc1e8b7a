/**
 * What `lifeline-relay serve` sends its parent over an IPC channel (Node's `process.send`, when it
 * was started with one) once it listens: where its API is, its endpoints and its VMs. The same
 * facts as its "relay ready" log line.
 */
export interface RelayReadyMessage {
  type: 'lifeline-relay.ready';
  /** The control API's URL: http(s)://host:port. */
  api: string;
  tlsFingerprint?: string;
  tlsCertificate?: 'self-signed' | 'configured' | 'fleet';
  endpoints: Array<{ name: string; ipAddress: string; advertiseAddress: string; sshPort: number }>;
  virtualMachines: string[];
}

export function isRelayReadyMessage(message: unknown): message is RelayReadyMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'lifeline-relay.ready' && typeof (message as { api?: unknown }).api === 'string';
}
