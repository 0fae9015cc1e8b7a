import { randomUUID } from 'node:crypto';
import type { AuditEventInput } from '../audit/audit-format.js';
import type { GatewayConfig } from '../config/config.js';
import type { Logger } from '../logger.js';
import type { FleetApi } from '../api/route-kit.js';
import type { AgentResource } from '../api/fleet-schemas.js';
import type { SessionResource } from '../api/schemas.js';
import { iso } from '../api/resources.js';
import type { HostKey } from '../ssh/host-key.js';
import type { PostgresStore } from '../store/postgres-store.js';
import { AgentTunnelServer } from './agent-tunnel.js';
import { hostPortText } from './agent.js';
import { consoleView } from './fleet-protocol.js';
import { FleetStore, type SlotRecord } from './fleet-store.js';
import { TUNNEL_KEEPALIVE } from './gateway-dialer.js';
import { RemoteConsoleDirectory } from './remote-directory.js';

/** How often a gateway beats, reads the fleet's agents and re-checks its sessions against the database. */
const RECONCILE_INTERVAL_MS = 2000;
const CHANNEL = 'lifeline';
/** A reconcile round that takes longer than this marks the database unreachable. */
const RECONCILE_DEADLINE_MS = 3000;

interface FleetEvent {
  type: 'console' | 'agent' | 'close-session' | 'endpoint';
  name: string;
  from: string;
}

export interface GatewayFleetOptions {
  store: PostgresStore;
  settings: GatewayConfig;
  hostKey: HostKey;
  log: Logger;
  /** A VM's console changed on some gateway (or a reconcile re-reads it): re-check this gateway's sessions of it. */
  revalidate(virtualMachine: string): Promise<void>;
  /** The VMs this gateway has connections to (re-checked at every reconcile, in case a notification was missed). */
  connectedVms(): string[];
  /** Agents joining, refused, connecting and leaving, for the fleet's audit trail. */
  audit(event: AuditEventInput): void;
  /** This gateway's sessions now (their byte counts go to the database for the others' lists). */
  sessions(): Array<{ id: string; bytesIn: number; bytesOut: number }>;
  /** Closes one of this gateway's sessions, asked through another gateway; false when it has none of that id. */
  closeSession(id: string): boolean;
}

/**
 * A gateway's part in the fleet: the port agents dial, the directory of their VMs, the heartbeat
 * and reconcile loop, and the LISTEN/NOTIFY channel that wakes every gateway on a console change.
 * Sessions outlive the database: a gateway that cannot reach it keeps its sessions, refuses new
 * ones, and still loses revoked ones through the agents (told by the gateways that can).
 */
export class GatewayFleet implements FleetApi {
  readonly id = randomUUID();
  readonly fleet: FleetStore;
  readonly directory: RemoteConsoleDirectory;
  private readonly server: AgentTunnelServer;
  private readonly startedAt = Date.now();
  private advertise: string | undefined;
  private alive: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private reachable_ = true;
  private round: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: GatewayFleetOptions) {
    const { log } = options;
    this.fleet = new FleetStore(options.store.sql);
    this.directory = new RemoteConsoleDirectory({
      gatewayId: this.id,
      claim: (vm, kind, session, owner) => this.fleet.claimSlot(vm, kind, { session, gateway: this.id, grant: owner.grant, remoteAddress: owner.remoteAddress, path: owner.path, endpoint: owner.endpoint ?? '' }),
      release: (vm, kind, session) => void this.fleet.releaseSlot(vm, kind, session).catch((error: Error) => log.debug({ err: error.message }, 'cannot release a session slot (cleared with this gateway\'s row if it is gone)')),
      agentSeen: (name, version, vms) => this.fleet.agentSeen(name, this.id, version, vms),
      agentLeft: (name) => void this.fleet.agentLeft(name, this.id).catch((error: Error) => log.debug({ err: error.message }, 'cannot record the agent leaving')),
      consoleViews: async (vms) => {
        const views = new Map<string, ReturnType<typeof consoleView>>();
        for (const vm of vms) views.set(vm, consoleView(await options.store.getConsole(vm)));
        return views;
      },
      gateways: () => this.alive,
      audit: (event) => options.audit(event),
      log: log.child({ component: 'fleet' }),
    });
    this.server = new AgentTunnelServer({
      hostKey: options.hostKey.privateKey,
      authorize: (name, fingerprint) => this.fleet.authorizeAgent(name, fingerprint),
      join: async (name, fingerprint, token) => {
        const joined = await this.fleet.redeemJoinToken(name, fingerprint, token);
        if (joined) log.info({ agent: name, key: fingerprint }, 'agent joined the fleet');
        else log.warn({ agent: name }, 'agent join refused: the token is used, expired, for another name, or the name has another key');
        options.audit({ type: joined ? 'agent.joined' : 'agent.join.refused', agent: name.slice(0, 64), keyFingerprint: fingerprint, gateway: this.id });
        return joined;
      },
      onAgent: (link) => {
        options.audit({ type: 'agent.connected', agent: link.name, keyFingerprint: link.keyFingerprint, gateway: this.id });
        link.onClose(() => options.audit({ type: 'agent.disconnected', agent: link.name, gateway: this.id }));
        this.directory.addLink(link);
      },
      keepaliveIntervalMs: TUNNEL_KEEPALIVE.intervalMs,
      keepaliveCountMax: TUNNEL_KEEPALIVE.countMax,
      log: log.child({ component: 'agent-tunnel' }),
    });
  }

  /** Follows the fleet's private endpoints (set by the relay once its endpoints exist): a name, or every one. */
  onEndpoint: ((name?: string) => void) | undefined;

  /** An endpoint changed through this gateway: the others follow. */
  endpointChanged(name: string): void {
    this.options.store.sql.notify(CHANNEL, JSON.stringify({ type: 'endpoint', name, from: this.id } satisfies FleetEvent)).catch((error: Error) => this.options.log.warn({ endpoint: name, err: error.message }, 'cannot tell the other gateways of an endpoint change (they re-read endpoints when they re-listen)'));
  }

  /** Whether the last reconcile reached the database. */
  get reachable(): boolean {
    return this.reachable_;
  }

  get caFingerprint(): string {
    return this.options.hostKey.fingerprint;
  }

  /** Listens for agents, subscribes to the fleet's notifications and starts beating. */
  async start(): Promise<void> {
    const { settings, log } = this.options;
    let port: number;
    try {
      port = await this.server.listen(settings.agentsListen.host, settings.agentsListen.port);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new Error(`agents.listen: cannot listen on ${hostPortText(settings.agentsListen)}: ${code === 'EADDRINUSE' ? 'the port is already in use' : code ?? (error as Error).message}`, { cause: error });
    }
    const advertised = settings.agentsAdvertise;
    this.advertise = advertised ? hostPortText({ host: advertised.host, port: advertised.port || port }) : undefined;
    // On every (re)listen: a reconcile, and every endpoint re-read (changes made while this gateway was not listening).
    const listener = await this.options.store.sql.listen(CHANNEL, (payload) => this.onEvent(payload), () => {
      void this.reconcile();
      this.onEndpoint?.();
    });
    this.unlisten = () => listener.unlisten();
    await this.reconcile();
    this.timer = setInterval(() => void this.reconcile(), RECONCILE_INTERVAL_MS);
    log.info({ gateway: this.id, agents: hostPortText({ host: settings.agentsListen.host, port }), advertise: this.advertise ?? null }, 'gateway listening for agents');
  }

  private onEvent(payload: string): void {
    let event: FleetEvent;
    try {
      event = JSON.parse(payload) as FleetEvent;
    } catch {
      return;
    }
    if (event.from === this.id) return;
    if (event.type === 'console') void this.consoleChanged(event.name, false);
    else if (event.type === 'agent') void this.reconcile();
    else if (event.type === 'endpoint') this.onEndpoint?.(event.name);
    else if (event.type === 'close-session' && this.options.closeSession(event.name)) this.options.log.info({ session: event.name }, 'session closed, as asked through another gateway');
  }

  /**
   * A console changed (here, or on another gateway): this gateway's sessions are re-checked, the
   * agent holding the VM is told (it ends what no longer holds even on a gateway cut off from the
   * database), and, for a change made here, every other gateway is woken.
   */
  async consoleChanged(virtualMachine: string, madeHere = true): Promise<void> {
    const { log } = this.options;
    try {
      this.directory.tellConsole(virtualMachine, consoleView(await this.options.store.getConsole(virtualMachine)));
      if (madeHere) await this.options.store.sql.notify(CHANNEL, JSON.stringify({ type: 'console', name: virtualMachine, from: this.id } satisfies FleetEvent));
      if (!madeHere) await this.options.revalidate(virtualMachine);
    } catch (error) {
      log.warn({ vm: virtualMachine, err: (error as Error).message }, 'cannot pass a console change on (the reconcile loop tries again)');
    }
  }

  /** Beats, clears gateways gone silent, lists the fleet's agents, and re-checks sessions; one round at a time. */
  private reconcile(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.round ??= this.reconcileOnce().finally(() => (this.round = undefined));
    return this.round;
  }

  private async reconcileOnce(): Promise<void> {
    const { log } = this.options;
    // A database that stops answering (a cut without a reset) counts as unreachable after a few seconds, though the query waits on.
    const slow = setTimeout(() => {
      if (this.reachable_) log.error('the fleet database does not answer: live sessions go on, new ones are refused until it does');
      this.reachable_ = false;
    }, RECONCILE_DEADLINE_MS);
    try {
      const alive = await this.fleet.heartbeat(this.id, this.advertise, this.startedAt);
      if (JSON.stringify(alive) !== JSON.stringify(this.alive)) {
        this.alive = alive;
        this.directory.tellGateways(alive);
      }
      this.directory.setFleetAgents(await this.fleet.listAgents());
      await this.fleet.reportSlots(this.id, this.options.sessions());
      for (const vm of this.options.connectedVms()) await this.options.revalidate(vm);
      if (!this.reachable_) log.info('the fleet database is reachable again');
      this.reachable_ = true;
    } catch (error) {
      if (this.reachable_) log.error({ err: (error as Error).message }, 'cannot reach the fleet database: live sessions go on, new ones are refused until it is back');
      this.reachable_ = false;
    } finally {
      clearTimeout(slow);
    }
  }

  async listAgents(): Promise<AgentResource[]> {
    const linked = new Set(this.directory.linkedAgents());
    return (await this.fleet.listAgents()).map((record) => ({
      name: record.name,
      state: record.gateways.length > 0 || linked.has(record.name) ? 'Connected' : 'Disconnected',
      gateways: record.gateways,
      ...(record.lastSeenAt !== undefined && { lastSeenAt: iso(record.lastSeenAt) }),
      joinedAt: iso(record.joinedAt),
      keyFingerprint: record.keyFingerprint,
      virtualMachines: record.virtualMachines.map((vm) => vm.name),
      conflicts: record.conflicts,
      version: record.version,
    }));
  }

  get gatewayName(): string {
    return this.advertise ?? this.id;
  }

  /** Sessions the other gateways hold. */
  async remoteSessions(): Promise<SessionResource[]> {
    return (await this.fleet.otherSlots(this.id)).map(slotResource);
  }

  /** Asks the gateway holding session `id` to close it; undefined when no gateway holds one of that id. */
  async closeRemoteSession(id: string, allowed: (virtualMachine: string) => boolean): Promise<SessionResource | undefined> {
    const slot = (await this.fleet.otherSlots(this.id)).find((candidate) => candidate.session === id && allowed(candidate.virtualMachine));
    if (slot) await this.options.store.sql.notify(CHANNEL, JSON.stringify({ type: 'close-session', name: id, from: this.id } satisfies FleetEvent));
    return slot && slotResource(slot);
  }

  createJoinToken(agent: string, expiresAt: number): Promise<string> {
    return this.fleet.createJoinToken(agent, expiresAt);
  }

  async deleteAgent(name: string): Promise<boolean> {
    const deleted = await this.fleet.deleteAgent(name);
    if (deleted) {
      await this.options.store.sql.notify(CHANNEL, JSON.stringify({ type: 'agent', name, from: this.id } satisfies FleetEvent)).catch(() => {});
      await this.reconcile();
    }
    return deleted;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.directory.close();
    await this.server.close();
    await this.unlisten?.().catch(() => {});
    await this.fleet.gatewayStopped(this.id).catch(() => {});
  }
}

function slotResource(slot: SlotRecord): SessionResource {
  const { session, startedAt, ...rest } = slot;
  return { id: session, startedAt: iso(startedAt), ...rest };
}
