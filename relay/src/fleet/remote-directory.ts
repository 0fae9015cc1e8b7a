import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.js';
import type { ConsoleDirectory } from '../sessions/console-seam.js';
import type { CloseReason } from '../sessions/live-session.js';
import type { AgentLink, ControlMessage, StreamRequest } from './agent-tunnel.js';
import type { AgentRecord } from './fleet-store.js';
import type { ConsoleView, VmDescriptor } from './fleet-protocol.js';
import { RemoteVm, type AgentPeer, type AgentRequest, type AgentResult, type ClaimSlot, type ReleaseSlot } from './remote-vm.js';

/** How long an agent has to say hello once its control channel is open. */
const HELLO_TIMEOUT_MS = 10_000;
/** How long a power action or break may take at the agent. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface RemoteDirectoryOptions {
  gatewayId: string;
  claim: ClaimSlot;
  release: ReleaseSlot;
  /** The agent's tunnel is up, or it reported its VMs: recorded in the fleet; returns the names another agent holds. */
  agentSeen(name: string, version: string, virtualMachines: VmDescriptor[]): Promise<Array<{ name: string; heldBy: string }>>;
  agentLeft(name: string): void;
  /** The Console resources of these VMs, for the agent to check its streams against. */
  consoleViews(virtualMachines: string[]): Promise<Map<string, ConsoleView | null>>;
  /** The agent addresses of the fleet's gateways alive now. */
  gateways(): string[];
  /** The fleet's audit trail: an agent's recordings' events go there. */
  audit?: (event: { type: string } & Record<string, unknown>) => void;
  log: Logger;
}

/** One agent's tunnel to this gateway, as its VMs use it. */
class LinkedAgent implements AgentPeer {
  private nextId = 1;
  private readonly pending = new Map<number, (result: AgentResult) => void>();
  private readonly ended = new Map<string, (reason: CloseReason) => void>();
  private readonly notices = new Map<string, (line: string) => void>();
  version = '';

  constructor(
    readonly link: AgentLink,
    /** The fleet's audit trail, for the agent's `recording.*` events. */
    private readonly audit: (event: { type: string } & Record<string, unknown>) => void,
  ) {}

  get name(): string {
    return this.link.name;
  }

  async openStream(request: StreamRequest, ended: (reason: CloseReason) => void, notice?: (line: string) => void): Promise<Duplex> {
    this.ended.set(request.session, ended);
    if (notice) this.notices.set(request.session, notice);
    const forget = (): void => {
      this.ended.delete(request.session);
      this.notices.delete(request.session);
    };
    try {
      const channel = await this.link.openStream(request);
      channel.once('close', forget);
      return channel;
    } catch (error) {
      forget();
      throw error;
    }
  }

  request(message: AgentRequest): Promise<AgentResult> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, error: { code: 'PowerActionFailed', message: `the hypervisor agent ${this.name} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s` } });
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
      this.link.send({ ...message, id });
    });
  }

  /** A message from the agent other than its VM list. */
  handle(message: ControlMessage): void {
    if (message.type === 'stream-ended' && typeof message.session === 'string') {
      const reason = message.reason as CloseReason | undefined;
      if (reason && typeof reason.code === 'string' && typeof reason.message === 'string') this.ended.get(message.session)?.({ code: reason.code, message: reason.message.slice(0, 300), ...(typeof reason.by === 'string' && { by: reason.by }) });
    } else if (message.type === 'result' && typeof message.id === 'number') {
      this.pending.get(message.id)?.({ ok: message.ok === true, ...(typeof message.error === 'object' && message.error !== null && { error: message.error as { code: string; message: string } }), ...('value' in message && { value: message.value }) });
      this.pending.delete(message.id);
    } else if (message.type === 'notice' && typeof message.session === 'string' && typeof message.line === 'string') {
      this.notices.get(message.session)?.(message.line.slice(0, 500));
    } else if (message.type === 'audit' && typeof message.event === 'object' && message.event !== null) {
      const event = message.event as { type?: unknown } & Record<string, unknown>;
      // An agent writes its recordings' events and nothing else into the fleet's trail.
      if (typeof event.type === 'string' && event.type.startsWith('recording.')) this.audit({ ...event, type: event.type, agent: this.name });
    }
  }

  gone(): void {
    for (const resolve of this.pending.values()) resolve({ ok: false, error: { code: 'PowerActionFailed', message: `the hypervisor agent ${this.name} disconnected` } });
    this.pending.clear();
  }
}

function descriptors(value: unknown): VmDescriptor[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const valid = value.filter((vm): vm is VmDescriptor => typeof vm === 'object' && vm !== null && typeof vm.name === 'string' && Array.isArray(vm.consoleTypes));
  return valid.length === value.length ? valid : undefined;
}

/**
 * The fleet's VMs as one gateway sees them: those of the agents whose tunnels end here (live), and
 * those of agents known to the fleet but not connected here (listed, Unavailable). The gateway's
 * SSH, VNC and API code reaches them through the seam like local ones.
 */
export class RemoteConsoleDirectory implements ConsoleDirectory {
  private readonly vms = new Map<string, RemoteVm>();
  private readonly agents = new Map<string, LinkedAgent>();
  private readonly goneListeners = new Set<(name: string, reason: string) => void>();

  constructor(private readonly options: RemoteDirectoryOptions) {}

  get(name: string): RemoteVm | undefined {
    return this.vms.get(name);
  }

  list(): RemoteVm[] {
    return [...this.vms.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  onGone(listener: (name: string, reason: string) => void): () => void {
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  private emitGone(name: string, reason: string): void {
    for (const listener of this.goneListeners) listener(name, reason);
  }

  /** Agents with a tunnel to this gateway now. */
  linkedAgents(): string[] {
    return [...this.agents.keys()];
  }

  /** The agents whose tunnels end here now, for what is asked of every agent (their recordings). */
  peers(): AgentPeer[] {
    return [...this.agents.values()];
  }

  /** A new agent tunnel: it must say hello first. */
  addLink(link: AgentLink): void {
    const { log } = this.options;
    const agent = new LinkedAgent(link, (event) => this.options.audit?.(event));
    let helloSeen = false;
    // One report at a time, in order: a change right after the hello is applied after it.
    let reports = Promise.resolve();
    const helloTimer = setTimeout(() => {
      log.warn({ agent: link.name }, 'agent tunnel: no hello; closed');
      link.close();
    }, HELLO_TIMEOUT_MS);
    link.onMessage((message) => {
      if (message.type === 'hello' || message.type === 'virtualMachines') {
        const announced = descriptors(message.virtualMachines);
        if (!announced) return log.warn({ agent: link.name }, 'agent tunnel: an unreadable VM list; ignored');
        if (message.type === 'hello') {
          if (helloSeen) return;
          helloSeen = true;
          clearTimeout(helloTimer);
          agent.version = typeof message.version === 'string' ? message.version.slice(0, 40) : '';
          const previous = this.agents.get(link.name);
          if (previous && previous !== agent) previous.link.close();
          this.agents.set(link.name, agent);
        } else if (!helloSeen) return;
        const first = message.type === 'hello';
        reports = reports.then(() => this.announce(agent, announced, first)).catch((error: Error) => log.error({ agent: link.name, err: error.message }, 'agent tunnel: cannot apply the agent\'s report'));
        return;
      }
      agent.handle(message);
    });
    link.onClose(() => {
      clearTimeout(helloTimer);
      agent.gone();
      if (this.agents.get(link.name) !== agent) return;
      this.agents.delete(link.name);
      for (const vm of this.vms.values()) {
        if (vm.agent !== link.name || vm.peer !== agent) continue;
        vm.peer = undefined;
        this.emitGone(vm.name, `the hypervisor agent ${link.name} of ${vm.name} disconnected from the gateway`);
      }
      this.options.agentLeft(link.name);
      log.info({ agent: link.name }, 'agent tunnel closed');
    });
  }

  /** Records what the agent announced and applies it here; on hello, tells the agent what it needs. */
  private async announce(agent: LinkedAgent, announced: VmDescriptor[], first: boolean): Promise<void> {
    const { log } = this.options;
    let conflicts: Array<{ name: string; heldBy: string }>;
    try {
      conflicts = await this.options.agentSeen(agent.name, agent.version, announced);
    } catch (error) {
      // Without the database the names cannot be checked: those it already holds here stay, new ones wait for the next report.
      log.warn({ agent: agent.name, err: (error as Error).message }, 'cannot record the agent in the fleet database');
      conflicts = announced.filter((vm) => this.vms.get(vm.name)?.agent !== agent.name).map((vm) => ({ name: vm.name, heldBy: '(unknown: the database is unreachable)' }));
    }
    if (this.agents.get(agent.name) !== agent) return;
    const refused = new Set(conflicts.map((conflict) => conflict.name));
    for (const conflict of conflicts) log.error({ agent: agent.name, vm: conflict.name, heldBy: conflict.heldBy }, 'agent announced a VM name another agent holds: refused (VM names are unique across the fleet)');
    this.apply(agent.name, announced.filter((vm) => !refused.has(vm.name)), agent);
    if (!first && conflicts.length === 0) return;
    if (first) agent.link.send({ type: 'welcome', gateway: this.options.gatewayId });
    if (conflicts.length > 0) agent.link.send({ type: 'conflicts', virtualMachines: conflicts });
    if (!first) return;
    agent.link.send({ type: 'gateways', addresses: this.options.gateways() });
    try {
      for (const [virtualMachine, view] of await this.options.consoleViews(announced.map((vm) => vm.name))) agent.link.send({ type: 'console', virtualMachine, console: view });
    } catch (error) {
      log.warn({ agent: agent.name, err: (error as Error).message }, 'cannot read the consoles to tell the agent');
    }
    log.info({ agent: agent.name, version: agent.version, virtualMachines: announced.length - conflicts.length }, 'agent connected');
  }

  /** The agent's VMs are now `held` (peer: its tunnel here, or undefined for an agent known only from the database). */
  private apply(agentName: string, held: VmDescriptor[], peer: LinkedAgent | undefined): void {
    const names = new Set(held.map((vm) => vm.name));
    for (const vm of [...this.vms.values()]) {
      if (vm.agent !== agentName || names.has(vm.name)) continue;
      this.vms.delete(vm.name);
      if (vm.peer) this.emitGone(vm.name, `the VM ${vm.name} is no longer on its hypervisor agent ${agentName}`);
    }
    for (const descriptor of held) {
      const existing = this.vms.get(descriptor.name);
      if (existing && existing.agent !== agentName && existing.peer) continue; // held live by another agent here
      if (existing && existing.agent === agentName && JSON.stringify(existing.consoleTypes) === JSON.stringify(descriptor.consoleTypes)) {
        existing.descriptor = descriptor;
        if (peer) existing.peer = peer;
        continue;
      }
      if (existing?.peer) this.emitGone(descriptor.name, `the VM ${descriptor.name} changed its console channels; reconnect`);
      this.vms.set(descriptor.name, new RemoteVm(agentName, descriptor, peer, { claim: this.options.claim, release: this.options.release }, this.options.log.child({ vm: descriptor.name })));
    }
  }

  /** The fleet's agents as the database lists them: those not linked here are listed as Unavailable; deleted ones leave. */
  setFleetAgents(records: AgentRecord[]): void {
    const known = new Set(records.map((record) => record.name));
    for (const [name, agent] of this.agents) {
      if (known.has(name)) continue;
      this.options.log.info({ agent: name }, 'the agent was deleted from the fleet: its tunnel is closed');
      agent.link.close();
    }
    for (const vm of [...this.vms.values()]) if (!known.has(vm.agent)) this.vms.delete(vm.name);
    for (const record of records) if (!this.agents.has(record.name)) this.apply(record.name, record.virtualMachines, undefined);
  }

  /** Tells the agent holding `virtualMachine` of its Console resource now. */
  tellConsole(virtualMachine: string, view: ConsoleView | null): void {
    const vm = this.vms.get(virtualMachine);
    const agent = vm && this.agents.get(vm.agent);
    agent?.link.send({ type: 'console', virtualMachine, console: view });
  }

  tellGateways(addresses: string[]): void {
    for (const agent of this.agents.values()) agent.link.send({ type: 'gateways', addresses });
  }

  close(): void {
    for (const agent of this.agents.values()) agent.link.close();
  }
}
