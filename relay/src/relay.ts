import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ensureAdminToken } from './admin-token.js';
import { buildApi } from './api/app.js';
import { VirtualMachineRegistry } from './backends/virtual-machines.js';
import { createSource, Discovery } from './discovery/discovery.js';
import type { RelayConfig } from './config/config.js';
import { EndpointManager } from './endpoints/endpoint-manager.js';
import type { Logger } from './logger.js';
import { ConsoleService } from './sessions/console-service.js';
import { SessionSupervisor } from './sessions/session-supervisor.js';
import { loadOrCreateHostKey } from './ssh/host-key.js';
import { SshConsoleServer } from './ssh/ssh-console-server.js';
import { SqliteStore } from './store/sqlite-store.js';
import { VncTokenService } from './vnc/vnc-tokens.js';
import { VncWebServer } from './vnc/vnc-web-server.js';
import type { Store } from './store/store.js';
import { RELAY_VERSION } from './version.js';

export interface Relay {
  readonly api: FastifyInstance;
  /** `http(s)://host:port` of the control API once listening. */
  readonly apiUrl: string;
  readonly endpoints: EndpointManager;
  /** Tells every session why, stops listening, closes channels and flushes the store. Idempotent. */
  close(reason?: string): Promise<void>;
}

export interface RelayOptions {
  log: Logger;
  adminTokenFromEnvironment?: string;
  /** The SSH host key (OpenSSH private key) instead of `<dataDir>/ssh_host_ed25519_key`; nothing is written. */
  hostKeyFromEnvironment?: string;
  /** Defaults to the SQLite store in the data folder. */
  store?: Store;
}

/** The relay's composition root: wires store, VMs, sessions, SSH and API, then listens. */
export async function createRelay(config: RelayConfig, options: RelayOptions): Promise<Relay> {
  const { log } = options;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store = options.store ?? new SqliteStore(join(config.dataDir, 'lifeline.db'));
  const closers: Array<() => Promise<void> | void> = [() => store.close()];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close();
  };
  try {
    const relayId = await store.initMeta('relayId', randomUUID());
    await ensureAdminToken(store, config.dataDir, options.adminTokenFromEnvironment, log);
    const hostKey = loadOrCreateHostKey(config.dataDir, options.hostKeyFromEnvironment);

    const supervisor = new SessionSupervisor(store, log);
    // A discovered VM that goes away (or comes back with new channels) ends its sessions with the reason.
    const virtualMachines = new VirtualMachineRegistry(config.virtualMachines, config.serial.replayBytes, log, (name, reason) => {
      supervisor.closeConnections((connection) => connection.grant.virtualMachine === name, reason);
    });
    virtualMachines.start();
    closers.push(() => virtualMachines.close());
    const discovery = new Discovery(config.discover.map((source) => createSource(source, log.child({ component: 'discovery' }))), virtualMachines, log.child({ component: 'discovery' }));
    await discovery.start();
    closers.push(() => discovery.close());

    const consoles = new ConsoleService(store, config.consoles, (name) => virtualMachines.get(name) !== undefined, async (vm, change) => {
      await supervisor.revalidate(vm);
      // Once the old holder's sessions are closed (detached at once), the next holder must not see their output.
      if (change.reset) virtualMachines.get(vm)?.serial?.clearReplay();
    });
    const ssh = new SshConsoleServer({
      hostKey,
      keepaliveIntervalMs: config.ssh.keepaliveIntervalMs,
      keepaliveCountMax: config.ssh.keepaliveCountMax,
      store,
      virtualMachines,
      supervisor,
      log: log.child({ component: 'ssh' }),
    });
    closers.push(() => ssh.close());
    const vncTokens = new VncTokenService(config.vnc.tokenTtlMs);
    const vncWeb = new VncWebServer({
      tokens: vncTokens,
      virtualMachines,
      supervisor,
      consoles: store,
      pingIntervalMs: config.vnc.pingIntervalMs,
      log: log.child({ component: 'vnc' }),
    });
    closers.push(() => vncWeb.close());
    const endpoints = new EndpointManager({
      defaultEndpoint: config.endpoints.default,
      addressPool: config.endpoints.addressPool,
      sshPort: config.ssh.port,
      vncPort: config.vnc.port,
      store,
      supervisor,
      onSshConnection: (socket, endpoint) => ssh.handle(socket, endpoint),
      onVncConnection: (socket, endpoint) => vncWeb.handle(socket, endpoint),
      log: log.child({ component: 'endpoints' }),
    });
    closers.push(() => endpoints.close());
    await endpoints.start();

    const api = buildApi({
      store,
      consoles,
      endpoints,
      virtualMachines,
      supervisor,
      vncTokens,
      log,
      relayInfo: () => ({
        id: relayId,
        version: RELAY_VERSION,
        sshHostKeys: [{ type: hostKey.type, fingerprint: hostKey.fingerprint, publicKey: hostKey.publicKey }],
        consoleDefaults: { defaultTtlSeconds: Math.round(config.consoles.defaultTtlMs / 1000), maxTtlSeconds: Math.round(config.consoles.maxTtlMs / 1000) },
      }),
      https: config.api.tls && { cert: readFileSync(config.api.tls.cert), key: readFileSync(config.api.tls.key) },
    });
    closers.push(() => api.close());
    let apiUrl: string;
    try {
      await api.listen({ host: config.api.host, port: config.api.port });
      const address = api.server.address() as { port: number };
      const host = config.api.host.includes(':') ? `[${config.api.host}]` : config.api.host;
      apiUrl = `${config.api.tls ? 'https' : 'http'}://${host}:${address.port}`;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new Error(`api.listen: cannot listen on ${config.api.host}:${config.api.port}: ${code === 'EADDRINUSE' ? 'the port is already in use' : code ?? (error as Error).message}`, { cause: error });
    }

    let closing: Promise<void> | undefined;
    return {
      api,
      apiUrl,
      endpoints,
      close(reason = 'the relay is shutting down') {
        closing ??= (async () => {
          await supervisor.closeAll(reason);
          await closeAll();
        })();
        return closing;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
