import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { ensureAdminToken } from './admin-token.js';
import { lockDataDir } from './data-lock.js';
import { checkDataDirModes } from './store/data-dir-modes.js';
import { buildApi } from './api/app.js';
import { ConnectionLimits } from './api/connection-limits.js';
import { sessionAuditEvents } from './audit/session-events.js';
import { RefusalRecorder } from './audit/refusal-recorder.js';
import { RelayMetrics } from './metrics/relay-metrics.js';
import { FailureBackoff, StartupLimiter } from './core/preauth-limits.js';
import type { RelayConfig } from './config/config.js';
import { EndpointManager } from './endpoints/endpoint-manager.js';
import type { Logger } from './logger.js';
import { openAuditTrail } from './relay-audit.js';
import { openConsoles } from './relay-consoles.js';
import { ConsoleService } from './sessions/console-service.js';
import { SessionSupervisor } from './sessions/session-supervisor.js';
import { loadOrCreateHostKey } from './ssh/host-key.js';
import { SshConsoleServer } from './ssh/ssh-console-server.js';
import { loadFleetHostKey, loadFleetTls } from './store/fleet-identity.js';
import { openStore } from './store/open-store.js';
import { VncWebServer } from './vnc/vnc-web-server.js';
import { loadTlsMaterial, TLS_SERVER_POLICY, type TlsMaterial } from './tls/tls-material.js';
import type { Store } from './store/store.js';
import { RecordingLibrary } from './recordings/recording-library.js';
import { announceVncViewer } from './sessions/vnc-notices.js';
import { localCatalog } from './recordings/recording-catalog.js';
import { RecordingService } from './recordings/recording-service.js';
import { FleetRecordings } from './fleet/fleet-recordings.js';
import { RELAY_VERSION } from './version.js';

export interface Relay {
  readonly api: FastifyInstance;
  /** `http(s)://host:port` of the control API once listening. */
  readonly apiUrl: string;
  readonly endpoints: EndpointManager;
  /** The certificate the API and WebSocket VNC port serve; undefined when TLS is off. */
  readonly tls: TlsMaterial | undefined;
  /** Tells every session why, stops listening, closes channels and flushes the store. Idempotent. */
  close(reason?: string): Promise<void>;
}

export interface RelayOptions {
  log: Logger;
  adminTokenFromEnvironment?: string;
  /** The SSH host key (OpenSSH private key) instead of `<dataDir>/ssh_host_ed25519_key`; nothing is written. */
  hostKeyFromEnvironment?: string;
  /** LIFELINE_FLEET_SECRET: a gateway's key to the fleet's private keys kept in the database. */
  fleetSecret?: string;
  /** Defaults to the SQLite store in the data folder. */
  store?: Store;
}

/** The relay's composition root: wires store, VMs, sessions, SSH and API, then listens. */
export async function createRelay(config: RelayConfig, options: RelayOptions): Promise<Relay> {
  const { log } = options;
  if (config.role === 'agent') throw new Error('role: agent is a hypervisor agent, not a relay: start it with createAgent (lifeline-relay does)');
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  checkDataDirModes(config.dataDir, log);
  const unlock = lockDataDir(config.dataDir);
  let store: Store;
  try {
    store = options.store ?? (await openStore(config));
  } catch (error) {
    unlock();
    throw error;
  }
  const closers: Array<() => Promise<void> | void> = [unlock, () => store.close()];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close();
  };
  try {
    const relayId = await store.initMeta('relayId', randomUUID());
    await ensureAdminToken(store, config.dataDir, options.adminTokenFromEnvironment, log);
    const hostKey =
      config.role === 'gateway'
        ? await loadFleetHostKey(store, { hostKey: options.hostKeyFromEnvironment, secret: options.fleetSecret })
        : loadOrCreateHostKey(config.dataDir, options.hostKeyFromEnvironment);
    const tls = config.role === 'gateway' ? await loadFleetTls(config, store, options.fleetSecret) : await loadTlsMaterial(config);
    const { audit, close: closeAudit } = await openAuditTrail(config, store, log);
    closers.push(closeAudit);
    let started = false;
    closers.push(() => {
      if (!started) return;
      try {
        audit.append({ type: 'relay.stopped' });
      } catch (error) {
        log.error({ err: (error as Error).message }, 'cannot write the audit trail');
      }
    });

    const supervisor = new SessionSupervisor(store, log);
    const auditEvents = sessionAuditEvents(audit, log.child({ component: 'audit' }));
    // A discovered VM that goes away (or comes back with new channels) ends its sessions with the reason.
    const relayConsoles = await openConsoles(config, { store, hostKey, supervisor, log, audit });
    const virtualMachines = relayConsoles.directory;
    const recordings = new RecordingService(config.recording, relayId, virtualMachines, (type, details) => auditEvents.note(type, details), log.child({ component: 'recordings' }), (session, reason) => void session.close(reason));
    supervisor.sharing.recorder = recordings;
    closers.push(() => recordings.close());
    const library = new RecordingLibrary(config.recording, (type, details) => auditEvents.note(type, details), log.child({ component: 'recordings' }));
    closers.push(library.startSweeping((id) => recordings.isRunning(id)));
    virtualMachines.onGone((name, reason) => {
      supervisor.closeConnections((connection) => connection.grant.virtualMachine === name, { code: 'vm-gone', message: reason });
    });
    closers.push(() => relayConsoles.close());
    await relayConsoles.start();
    const metrics = new RelayMetrics(supervisor, virtualMachines, audit);
    const refusals = new RefusalRecorder({
      perSourcePerWindow: config.audit.refusalsPerMinute,
      write: (event) => void audit.append(event),
      onCoalesced: (how) => metrics.refusalCoalesced(how),
      onError: (error) => log.error({ err: error.message }, 'cannot write the audit trail'),
    });
    closers.push(() => refusals.close());
    supervisor.events = {
      opened(session, grant) {
        metrics.sessionOpened(session);
        auditEvents.opened(session, grant);
        recordings.opened(session, grant, session.terminal);
        announceVncViewer(supervisor.sessions.list(), session, 'joined');
      },
      closed(session, reason) {
        metrics.sessionClosed(session, reason);
        auditEvents.closed(session, reason);
        recordings.closed(session, reason);
        announceVncViewer(supervisor.sessions.list(), session, 'left');
      },
      note(type, details) {
        auditEvents.note(type, details);
        recordings.note(type, details);
      },
    };

    const { vncTokens } = relayConsoles;
    const consoles = new ConsoleService(store, config.consoles, (name) => virtualMachines.get(name) !== undefined, async (vm, change) => {
      // VNC tokens minted before a disable, delete or re-key are void, even if the console is enabled again within their minute.
      if (change.reset || !change.record?.enabled) await vncTokens.revoke(vm);
      await supervisor.revalidate(vm);
      // Once the old holder's sessions are closed (detached at once), the next holder must not see their output.
      await relayConsoles.consoleChanged(vm, change.reset);
    });
    // One count of failed authentications per address, whichever port they come to (SSH keys, API tokens, VNC tokens).
    const failures = new FailureBackoff();
    const ssh = new SshConsoleServer({
      hostKey,
      keepaliveIntervalMs: config.ssh.keepaliveIntervalMs,
      keepaliveCountMax: config.ssh.keepaliveCountMax,
      store,
      virtualMachines,
      supervisor,
      log: log.child({ component: 'ssh' }),
      metrics: metrics.ssh,
      loginGraceTimeMs: config.ssh.loginGraceTimeMs,
      startups: new StartupLimiter(config.ssh.maxStartups, config.ssh.perSourceMaxStartups),
      failures,
      maxSessions: config.ssh.maxSessions,
      refusals,
      onObserverDropped: (message) => metrics.observerMessageDropped(message),
    });
    closers.push(() => ssh.close());
    const vncWeb = new VncWebServer({
      tokens: vncTokens,
      virtualMachines,
      supervisor,
      consoles: store,
      pingIntervalMs: config.vnc.pingIntervalMs,
      log: log.child({ component: 'vnc' }),
      tls,
      onTokenRefused: () => metrics.authFailed('vnc-token'),
      onObserverDropped: (message) => metrics.observerMessageDropped(message),
      loginGraceTimeMs: config.vnc.loginGraceTimeMs,
      startups: new StartupLimiter(config.vnc.maxStartups, config.vnc.perSourceMaxStartups),
      failures,
      metrics: metrics.preauth('vnc'),
      allowedOrigins: config.vnc.allowedOrigins,
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
      shared: relayConsoles.fleet !== undefined,
      onChanged: (name) => relayConsoles.fleet?.endpointChanged(name),
    });
    if (relayConsoles.fleet) relayConsoles.fleet.onEndpoint = (name) => void endpoints.sync(name).catch((error: Error) => log.warn({ err: error.message }, 'cannot follow the fleet\'s endpoints'));
    closers.push(() => endpoints.close());
    await endpoints.start();

    // Logged at most once a minute per kind: the cap is what stands between one token and the relay's descriptors.
    const lastLogged = new Map<string, number>();
    const connectionLimits = new ConnectionLimits({
      perSource: config.api.maxConnectionsPerSource,
      perToken: config.api.maxConnectionsPerToken,
      max: config.api.maxConnections,
      onRefused: (reason, detail) => {
        metrics.apiConnectionRefused(reason);
        if (Date.now() - (lastLogged.get(reason) ?? 0) < 60_000) return;
        lastLogged.set(reason, Date.now());
        log.warn({ component: 'api', reason, ...detail }, 'API connection limit reached: connections are being refused (see lifeline_api_connections_refused_total)');
      },
    });
    const api = await buildApi({
      store,
      consoles,
      endpoints,
      virtualMachines,
      supervisor,
      vncTokens,
      // A gateway's recordings are its agents' (they record their VMs); a standalone relay's are on its disk.
      recordings: relayConsoles.fleet ? new FleetRecordings(() => relayConsoles.fleet!.directory.peers(), log.child({ component: 'recordings' })) : localCatalog(library, (id) => recordings.isRunning(id)),
      log,
      audit,
      metrics,
      failures,
      refusals,
      connectionLimits,
      preauth: { startups: new StartupLimiter(config.api.maxStartups, config.api.perSourceMaxStartups), graceMs: config.api.loginGraceTimeMs, metrics: metrics.preauth('api') },
      ...(relayConsoles.fleet && { fleet: relayConsoles.fleet }),
      relayInfo: () => ({
        id: relayId,
        version: RELAY_VERSION,
        sshHostKeys: [{ type: hostKey.type, fingerprint: hostKey.fingerprint, publicKey: hostKey.publicKey }],
        consoleDefaults: { defaultTtlSeconds: Math.round(config.consoles.defaultTtlMs / 1000), maxTtlSeconds: Math.round(config.consoles.maxTtlMs / 1000) },
        ...(tls && { tlsFingerprint: tls.fingerprint }),
      }),
      https: tls && { ...TLS_SERVER_POLICY, cert: tls.cert, key: tls.key },
    });
    closers.push(() => api.close());
    let apiUrl: string;
    try {
      await api.listen({ host: config.api.host, port: config.api.port });
      const address = api.server.address() as { port: number };
      const host = config.api.host.includes(':') ? `[${config.api.host}]` : config.api.host;
      apiUrl = `${tls ? 'https' : 'http'}://${host}:${address.port}`;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new Error(`api.listen: cannot listen on ${config.api.host}:${config.api.port}: ${code === 'EADDRINUSE' ? 'the port is already in use' : code ?? (error as Error).message}`, { cause: error });
    }

    audit.append({ type: 'relay.started', version: RELAY_VERSION, relayId, apiUrl, tlsFingerprint: tls?.fingerprint ?? null });
    started = true;

    let closing: Promise<void> | undefined;
    return {
      api,
      apiUrl,
      endpoints,
      tls,
      close(reason = 'the relay is shutting down') {
        closing ??= (async () => {
          await supervisor.closeAll({ code: 'shutdown', message: reason });
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
