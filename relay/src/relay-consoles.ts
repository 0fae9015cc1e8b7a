import { VirtualMachineRegistry } from './backends/virtual-machines.js';
import type { AuditTrail } from './audit/audit-format.js';
import type { RelayConfig } from './config/config.js';
import { createSource, Discovery } from './discovery/discovery.js';
import { FleetVncTokens } from './fleet/fleet-vnc-tokens.js';
import { GatewayFleet } from './fleet/gateway-fleet.js';
import type { Logger } from './logger.js';
import type { ConsoleDirectory } from './sessions/console-seam.js';
import type { SessionSupervisor } from './sessions/session-supervisor.js';
import type { HostKey } from './ssh/host-key.js';
import { PostgresStore } from './store/postgres-store.js';
import type { Store } from './store/store.js';
import { VncTokenService, type VncTokens } from './vnc/vnc-tokens.js';

/** Where a relay's VMs are: this host's sockets (standalone), or the fleet's agents (a gateway). */
export interface RelayConsoles {
  directory: ConsoleDirectory;
  /** A gateway's fleet; undefined on a standalone relay. */
  fleet: GatewayFleet | undefined;
  /** VNC tokens: in memory, or in the fleet's database (any gateway redeems them). */
  vncTokens: VncTokens;
  /** Starts the channels (or listens for agents). */
  start(): Promise<void>;
  /** A console changed here: the fleet is told (a gateway); the VM's kept output goes when `reset`. */
  consoleChanged(virtualMachine: string, reset: boolean): Promise<void>;
  close(): Promise<void>;
}

export async function openConsoles(config: RelayConfig, deps: { store: Store; hostKey: HostKey; supervisor: SessionSupervisor; log: Logger; audit: AuditTrail }): Promise<RelayConsoles> {
  const { log, supervisor } = deps;
  if (config.role === 'gateway' && config.gateway) {
    if (!(deps.store instanceof PostgresStore)) throw new Error('a gateway runs on the fleet database (store.postgres.url)');
    const fleet = new GatewayFleet({
      store: deps.store,
      settings: config.gateway,
      hostKey: deps.hostKey,
      log,
      revalidate: (vm) => supervisor.revalidate(vm),
      connectedVms: () => supervisor.connectedVms(),
      sessions: () => supervisor.sessions.list().map(({ id, bytesIn, bytesOut }) => ({ id, bytesIn, bytesOut })),
      closeSession: (id) => supervisor.closeSession(id, { code: 'closed-by-admin', message: 'closed by an administrator' }),
      audit: (event) => {
        try {
          void Promise.resolve(deps.audit.append(event)).catch(() => {});
        } catch (error) {
          log.error({ err: (error as Error).message }, 'cannot write the audit trail');
        }
      },
    });
    return {
      directory: fleet.directory,
      fleet,
      vncTokens: new FleetVncTokens(deps.store.sql, config.vnc.tokenTtlMs),
      start: () => fleet.start(),
      // The agent forgets the kept output when it hears of the change.
      consoleChanged: (vm) => fleet.consoleChanged(vm),
      close: () => fleet.close(),
    };
  }
  const registry = new VirtualMachineRegistry(config.virtualMachines, config.serial.replayBytes, log);
  let discovery: Discovery | undefined;
  return {
    directory: registry,
    fleet: undefined,
    vncTokens: new VncTokenService(config.vnc.tokenTtlMs),
    async start() {
      registry.start();
      const sources = await Promise.all(config.discover.map((source) => createSource(source, log.child({ component: 'discovery' }))));
      discovery = new Discovery(sources, registry, log.child({ component: 'discovery' }));
      await discovery.start();
    },
    async consoleChanged(vm, reset) {
      if (reset) registry.get(vm)?.serial?.clearReplay();
    },
    async close() {
      await discovery?.close();
      registry.close();
    },
  };
}
