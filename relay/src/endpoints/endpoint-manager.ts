import { createServer, type Server, type Socket } from 'node:net';
import { parseCidr, sourceAllowed, type Ipv4Cidr } from '../core/cidr.js';
import { DomainError } from '../core/domain-error.js';
import { endpointAddress, type EndpointInput } from './endpoint-address.js';
import type { Logger } from '../logger.js';
import type { SessionSupervisor } from '../sessions/session-supervisor.js';
import type { Store } from '../store/store.js';
import { bindProblem, closeServer, listen, type Bound } from './endpoint-listeners.js';

export const DEFAULT_ENDPOINT = 'default';

export interface EndpointView {
  name: string;
  ipAddress: string;
  /** Where clients connect: `advertiseAddress` of the default endpoint, else its `ipAddress` (never a wildcard). */
  advertiseAddress: string;
  sshPort: number;
  vncPort: number;
  allowedSourcePrefixes: string[];
  provisioningState: 'Succeeded' | 'Failed';
}

export type { EndpointInput } from './endpoint-address.js';

interface Entry {
  name: string;
  ipAddress: string;
  advertiseAddress?: string;
  prefixes: Ipv4Cidr[];
  listener: Server | undefined;
  vncListener: Server | undefined;
  /** Open connections through this endpoint's listeners. */
  sockets: Set<Socket>;
  sshPort: number;
  vncPort: number;
  createdAt: number;
}

export interface EndpointManagerOptions {
  defaultEndpoint: { ipAddress: string; advertiseAddress?: string; allowedSourcePrefixes: Ipv4Cidr[] };
  addressPool: Ipv4Cidr[];
  sshPort: number;
  vncPort: number;
  store: Store;
  supervisor: SessionSupervisor;
  /** Receive each admitted connection (source already checked). */
  onSshConnection: (socket: Socket, endpoint: string) => void;
  onVncConnection: (socket: Socket, endpoint: string) => void;
  log: Logger;
  /**
   * A fleet gateway: endpoints are the fleet's (in the shared store) and every gateway listens on
   * them where it can; one whose address is not on this host is Failed here without making the
   * gateway unhealthy.
   */
  shared?: boolean;
  /** After an endpoint was created, changed or deleted through this relay (a gateway tells the others). */
  onChanged?: (name: string) => void;
}

/**
 * Private endpoints: for each, an SSH listener on its own address. Connections from outside
 * the endpoint's allowed source prefixes are reset before any protocol byte. The `default`
 * endpoint comes from the config; the others from the API and the store, restored at start.
 */
export class EndpointManager {
  private readonly entries = new Map<string, Entry>();
  /** Serializes changes so two requests cannot claim one address. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: EndpointManagerOptions) {}

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work, work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private newListener(name: string, sockets: Set<Socket>, kind: 'ssh' | 'vnc'): Server {
    const server = createServer({ noDelay: true }, (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      const entry = this.entries.get(name);
      const current = kind === 'ssh' ? entry?.listener : entry?.vncListener;
      if (!entry || current !== server || !sourceAllowed(entry.prefixes, socket.remoteAddress ?? '')) {
        this.options.log.info({ endpoint: name, remote: socket.remoteAddress, kind }, 'connection refused: source not allowed');
        socket.resetAndDestroy();
        return;
      }
      if (kind === 'ssh') this.options.onSshConnection(socket, name);
      else this.options.onVncConnection(socket, name);
    });
    server.on('error', (error) => this.options.log.error({ endpoint: name, err: error.message }, 'listener error'));
    return server;
  }

  /** Binds the SSH and the WebSocket VNC listener on `ipAddress`; both or neither. */
  private async bind(name: string, ipAddress: string): Promise<Bound> {
    const sockets = new Set<Socket>();
    const listener = this.newListener(name, sockets, 'ssh');
    const vncListener = this.newListener(name, sockets, 'vnc');
    let port = this.options.sshPort;
    try {
      const sshPort = await listen(listener, ipAddress, port);
      port = this.options.vncPort;
      const vncPort = await listen(vncListener, ipAddress, port);
      return { listener, vncListener, sshPort, vncPort, sockets };
    } catch (error) {
      listener.close();
      vncListener.close();
      throw new DomainError('unprocessable', 'EndpointBindFailed', `endpoint "${name}": ${bindProblem(error as NodeJS.ErrnoException, ipAddress, port)}`);
    }
  }

  /** Binds the default endpoint (a failure stops the relay) and restores the stored ones (a failure is logged and shown). */
  async start(): Promise<void> {
    const { defaultEndpoint } = this.options;
    const first = await this.bind(DEFAULT_ENDPOINT, defaultEndpoint.ipAddress);
    this.entries.set(DEFAULT_ENDPOINT, {
      name: DEFAULT_ENDPOINT,
      ipAddress: defaultEndpoint.ipAddress,
      ...(defaultEndpoint.advertiseAddress && { advertiseAddress: defaultEndpoint.advertiseAddress }),
      prefixes: defaultEndpoint.allowedSourcePrefixes,
      ...first,
      createdAt: Date.now(),
    });
    for (const record of await this.options.store.listEndpoints()) {
      const entry: Entry = {
        name: record.name,
        ipAddress: record.ipAddress,
        prefixes: record.allowedSourcePrefixes.map((text) => parseCidr(text)!).filter(Boolean),
        listener: undefined,
        vncListener: undefined,
        sockets: new Set(),
        sshPort: this.options.sshPort,
        vncPort: this.options.vncPort,
        createdAt: record.createdAt,
      };
      this.entries.set(record.name, entry);
      try {
        Object.assign(entry, await this.bind(record.name, record.ipAddress));
      } catch (error) {
        this.options.log.error({ endpoint: record.name, err: (error as Error).message }, 'cannot restore private endpoint');
      }
    }
  }

  private view(entry: Entry): EndpointView {
    return {
      name: entry.name,
      ipAddress: entry.ipAddress,
      advertiseAddress: entry.advertiseAddress ?? entry.ipAddress,
      sshPort: entry.sshPort,
      vncPort: entry.vncPort,
      allowedSourcePrefixes: entry.prefixes.map((cidr) => cidr.text),
      provisioningState: entry.listener ? 'Succeeded' : 'Failed',
    };
  }

  list(): EndpointView[] {
    return [...this.entries.values()].map((entry) => this.view(entry));
  }

  get(name: string): EndpointView {
    const entry = this.entries.get(name);
    if (!entry) throw new DomainError('not-found', 'EndpointNotFound', `no private endpoint named "${name}"; list them with GET /v1/privateEndpoints`);
    return this.view(entry);
  }

  put(name: string, input: EndpointInput): Promise<{ view: EndpointView; created: boolean }> {
    return this.serialized(() => this.applyPut(name, input));
  }

  private async applyPut(name: string, input: EndpointInput): Promise<{ view: EndpointView; created: boolean }> {
    if (this.closed) throw new DomainError('conflict', 'RelayShuttingDown', 'the relay is shutting down');
    if (name === DEFAULT_ENDPOINT) {
      throw new DomainError('conflict', 'EndpointManagedByConfig', 'the "default" endpoint is set in the relay config file (endpoints.default), not through the API');
    }
    const existing = this.entries.get(name);
    const used = new Set([...this.entries.values()].filter((entry) => entry.name !== name).map((entry) => entry.ipAddress));
    const { prefixes, ipAddress } = endpointAddress(input, { current: existing?.ipAddress, used, pool: this.options.addressPool });

    const moves = !existing?.listener || existing.ipAddress !== ipAddress;
    const bound = moves ? await this.bind(name, ipAddress) : undefined;
    const now = Date.now();
    try {
      await this.options.store.putEndpoint({
        name,
        ipAddress,
        allowedSourcePrefixes: prefixes.map((cidr) => cidr.text),
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      });
    } catch (error) {
      closeServer(bound);
      throw error;
    }
    const entry = this.install(name, ipAddress, prefixes, existing, bound, now);
    this.options.log.info({ endpoint: name, ipAddress, sshPort: entry.sshPort, vncPort: entry.vncPort }, existing ? 'private endpoint updated' : 'private endpoint created');
    this.options.onChanged?.(name);
    return { view: this.view(entry), created: !existing };
  }

  /** Makes `name` the endpoint on `ipAddress` with `prefixes` (its new listeners `bound`), and ends what the change no longer admits. */
  private install(name: string, ipAddress: string, prefixes: Ipv4Cidr[], existing: Entry | undefined, bound: Bound | undefined, createdAt: number): Entry {
    const entry: Entry = {
      name,
      ipAddress,
      prefixes,
      listener: existing?.listener,
      vncListener: existing?.vncListener,
      sockets: existing?.sockets ?? new Set(),
      sshPort: existing?.sshPort ?? this.options.sshPort,
      vncPort: existing?.vncPort ?? this.options.vncPort,
      ...bound,
      createdAt: existing?.createdAt ?? createdAt,
    };
    this.entries.set(name, entry);
    if (existing && bound) {
      this.options.supervisor.closeConnections((c) => c.endpoint === name, { code: 'endpoint-changed', message: `the private endpoint "${name}" moved to ${ipAddress}` });
      closeServer(existing);
    } else if (existing) {
      this.options.supervisor.closeConnections(
        (c) => c.endpoint === name && !sourceAllowed(prefixes, c.remoteAddress),
        { code: 'endpoint-changed', message: `your address is no longer allowed on the private endpoint "${name}"` },
      );
    }
    return entry;
  }

  /**
   * A fleet gateway: the endpoint `name` changed in the shared store through another gateway (or,
   * without a name, any may have): this one follows — listens on its address where it can, applies
   * its prefixes, or stops. Serialized with this relay's own changes.
   */
  sync(name?: string): Promise<void> {
    return this.serialized(async () => {
      if (this.closed) return;
      const stored = new Map((await this.options.store.listEndpoints()).map((record) => [record.name, record]));
      const names = name ? [name] : [...new Set([...stored.keys(), ...this.entries.keys()])];
      for (const each of names) {
        if (each === DEFAULT_ENDPOINT) continue;
        const record = stored.get(each);
        const existing = this.entries.get(each);
        if (!record) {
          if (existing) this.remove(existing);
          continue;
        }
        const prefixes = record.allowedSourcePrefixes.map((text) => parseCidr(text)!).filter(Boolean);
        if (existing && existing.ipAddress === record.ipAddress && existing.prefixes.map((cidr) => cidr.text).join() === prefixes.map((cidr) => cidr.text).join() && existing.listener) continue;
        let bound: Bound | undefined;
        if (!existing?.listener || existing.ipAddress !== record.ipAddress) {
          bound = await this.bind(each, record.ipAddress).catch((error: Error) => {
            this.options.log.warn({ endpoint: each, err: error.message }, 'a fleet endpoint cannot listen on this gateway');
            return undefined;
          });
        }
        this.install(each, record.ipAddress, prefixes, existing, bound, record.createdAt);
      }
    });
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry.name);
    this.options.supervisor.closeConnections((c) => c.endpoint === entry.name, { code: 'endpoint-changed', message: `the private endpoint "${entry.name}" was deleted` });
    closeServer(entry);
  }

  delete(name: string): Promise<void> {
    return this.serialized(async () => {
      if (name === DEFAULT_ENDPOINT) {
        throw new DomainError('conflict', 'EndpointManagedByConfig', 'the "default" endpoint is set in the relay config file and cannot be deleted');
      }
      const entry = this.entries.get(name);
      if (!entry) throw new DomainError('not-found', 'EndpointNotFound', `no private endpoint named "${name}"`);
      await this.options.store.deleteEndpoint(name);
      this.remove(entry);
      this.options.log.info({ endpoint: name }, 'private endpoint deleted');
      this.options.onChanged?.(name);
    });
  }

  /** Stops accepting connections on every endpoint. */
  async close(): Promise<void> {
    this.closed = true;
    for (const entry of this.entries.values()) closeServer(entry);
  }

  /** True when every endpoint that should listen does. */
  get healthy(): boolean {
    // A fleet's endpoint whose address is not on this host is Failed here, and the gateway still serves.
    return !this.closed && [...this.entries.values()].every((entry) => (this.options.shared && entry.name !== DEFAULT_ENDPOINT) || (entry.listener?.listening && entry.vncListener?.listening));
  }
}
