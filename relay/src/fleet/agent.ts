import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostPort, RelayConfig } from '../config/config.js';
import { parseHostPort } from '../config/listen-address.js';
import { hostForUrl } from '../api/resources.js';
import { VirtualMachineRegistry } from '../backends/virtual-machines.js';
import { lockDataDir } from '../data-lock.js';
import { createSource, Discovery } from '../discovery/discovery.js';
import type { Logger } from '../logger.js';
import { PowerActionError } from '../sessions/console-seam.js';
import { loadOrCreateHostKey } from '../ssh/host-key.js';
import { checkDataDirModes } from '../store/data-dir-modes.js';
import { writeFileDurable } from '../store/durable-file.js';
import { RELAY_VERSION } from '../version.js';
import { AgentRecordings } from './agent-recordings.js';
import { AgentStreams } from './agent-streams.js';
import { GatewayDialer } from './gateway-dialer.js';
import { describeVm, type GatewayMessage, type ResultMessage } from './fleet-protocol.js';

/** How often the agent compares its VMs with what it last told the gateways. */
const REPORT_INTERVAL_MS = 500;
const PIN_FILE = 'fleet_host_key.fingerprint';

export interface Agent {
  /** The agent's own key (what the fleet registers when it joins). */
  readonly keyFingerprint: string;
  /** Addresses of the gateways it holds a tunnel to now. */
  connectedGateways(): string[];
  close(reason?: string): Promise<void>;
}

export interface AgentOptions {
  log: Logger;
  /** LIFELINE_JOIN_TOKEN (overrides `agent.joinToken`). */
  joinToken?: string;
}

export const hostPortText = (address: HostPort): string => `${hostForUrl(address.host)}:${address.port}`;

/**
 * A hypervisor agent (`role: agent`): the VMs of this host (configured and discovered, as on a
 * standalone relay), served to the fleet's gateways through tunnels it dials. It listens on
 * nothing and holds no database credentials.
 */
export async function createAgent(config: RelayConfig, options: AgentOptions): Promise<Agent> {
  const { log } = options;
  const settings = config.agent;
  if (!settings) throw new Error('role: agent needs agent.name and gateways');
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  checkDataDirModes(config.dataDir, log);
  const unlock = lockDataDir(config.dataDir);
  const closers: Array<() => Promise<void> | void> = [unlock];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close();
  };
  try {
    const key = loadOrCreateHostKey(config.dataDir, undefined, { file: 'agent_ed25519_key', what: 'agent key', change: 'the agent must then join the fleet again with a new join token' });
    const virtualMachines = new VirtualMachineRegistry(config.virtualMachines, config.serial.replayBytes, log);
    const streams = new AgentStreams(virtualMachines, log.child({ component: 'streams' }));
    closers.push(() => virtualMachines.close());
    const dialers = new Map<string, GatewayDialer>();
    // The agent records its VMs' sessions (docs/recordings.md#in-a-fleet); the events go to one connected gateway.
    const recordings = new AgentRecordings(config, settings.name, virtualMachines, {
      send: (message) => {
        const dialer = [...dialers.values()].find((candidate) => candidate.connected);
        dialer?.send(message);
        return dialer !== undefined;
      },
    }, log.child({ component: 'recordings' }));
    streams.recordings = recordings;
    closers.push(() => recordings.close());
    virtualMachines.onGone((name, reason) => streams.endVm(name, { code: 'vm-gone', message: reason }));
    virtualMachines.start();
    const discovery = new Discovery(await Promise.all(config.discover.map((source) => createSource(source, log.child({ component: 'discovery' })))), virtualMachines, log.child({ component: 'discovery' }));
    await discovery.start();
    closers.push(() => discovery.close());

    const pinFile = join(config.dataDir, PIN_FILE);
    let pinned = settings.caFingerprint ?? readTrimmed(pinFile);
    const trust = (fingerprint: string): boolean => {
      if (pinned) return fingerprint === pinned;
      // Trust on first use, kept: every later gateway must present the same key.
      pinned = fingerprint;
      writeFileDurable(pinFile, `${fingerprint}\n`, 0o600);
      log.warn({ fingerprint, file: pinFile }, 'trusted the fleet host key on first use (set agent.caFingerprint from POST /v1/agentJoinTokens to pin it from the start)');
      return true;
    };
    const descriptors = (): string => JSON.stringify(virtualMachines.list().map(describeVm));
    let reported = descriptors();

    const onMessage = (dialer: GatewayDialer, message: GatewayMessage): void => {
      switch (message.type) {
        case 'welcome':
          return recordings.flush();
        case 'recordings':
          return dialer.send({ type: 'result', id: message.id, ...recordings.answer(message) });
        case 'console':
          return streams.console(message.virtualMachine, message.console);
        case 'gateways':
          return learnGateways(message.addresses);
        case 'conflicts':
          for (const { name, heldBy } of message.virtualMachines) {
            log.error({ vm: name, heldBy, gateway: dialer.address }, `the fleet refused VM ${name}: agent ${heldBy} already has a VM of that name (VM names are unique across the fleet); rename one of them`);
          }
          return;
        case 'power': {
          const vm = virtualMachines.get(message.virtualMachine);
          const reply = (result: Omit<ResultMessage, 'type' | 'id'>): void => dialer.send({ type: 'result', id: message.id, ...result });
          if (!vm) return reply({ ok: false, error: { code: 'VirtualMachineNotFound', message: `agent ${settings.name} has no VM ${message.virtualMachine}` } });
          vm.power(message.action).then(
            () => reply({ ok: true }),
            (error: Error) => reply({ ok: false, error: { code: error instanceof PowerActionError ? error.code : 'PowerActionFailed', message: error.message } }),
          );
          return;
        }
        case 'break':
          dialer.send({ type: 'result', id: message.id, ok: virtualMachines.get(message.virtualMachine)?.serial?.sendBreak() ?? false });
          return;
      }
    };

    const configured = new Set(settings.gateways.map(hostPortText));
    const dial = (address: string, target: HostPort): void => {
      if (dialers.has(address)) return;
      const dialer = new GatewayDialer({
        address,
        target,
        name: settings.name,
        privateKey: key.privateKey,
        joinToken: options.joinToken ?? settings.joinToken ?? (settings.joinTokenFile ? readTrimmed(settings.joinTokenFile.replaceAll('{agent}', settings.name)) : undefined),
        trust,
        streams,
        log: log.child({ gateway: address }),
        hello: () => ({ type: 'hello', name: settings.name, version: RELAY_VERSION, virtualMachines: JSON.parse(descriptors()) }),
        onMessage: (message) => onMessage(dialer, message),
      });
      dialers.set(address, dialer);
      dialer.start();
    };
    // A gateway the others no longer list (it stopped heartbeating: killed, scaled down) is not chased, unless configured.
    const learnGateways = (addresses: string[]): void => {
      for (const address of addresses) {
        const target = parseAddress(address);
        if (target) dial(hostPortText(target), target);
      }
      const listed = new Set(addresses.map((address) => parseAddress(address)).filter((target) => target !== undefined).map(hostPortText));
      for (const [address, dialer] of dialers) {
        if (configured.has(address) || listed.has(address) || dialer.connected) continue;
        dialer.stop();
        dialers.delete(address);
        log.info({ gateway: address }, 'the fleet no longer lists this gateway: stopped dialling it');
      }
    };
    for (const target of settings.gateways) dial(hostPortText(target), target);
    closers.push(async () => {
      await Promise.all([...dialers.values()].map((dialer) => dialer.stop()));
    });

    const reporter = setInterval(() => {
      const now = descriptors();
      if (now === reported) return;
      reported = now;
      for (const dialer of dialers.values()) dialer.send({ type: 'virtualMachines', virtualMachines: JSON.parse(now) });
    }, REPORT_INTERVAL_MS);
    closers.push(() => clearInterval(reporter));
    log.info({ agent: settings.name, key: key.fingerprint, gateways: [...configured], virtualMachines: virtualMachines.list().length }, 'agent started: dialling the gateways');

    let closing: Promise<void> | undefined;
    return {
      keyFingerprint: key.fingerprint,
      connectedGateways: () => [...dialers.values()].filter((dialer) => dialer.connected).map((dialer) => dialer.address),
      close(reason = 'the agent is shutting down') {
        closing ??= (async () => {
          streams.close({ code: 'vm-gone', message: `the hypervisor agent ${settings.name} is shutting down (${reason})` });
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

/** A file's text, trimmed; undefined when it is missing or empty (a pin not made yet, a join token not given). */
function readTrimmed(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** `host:port` or `[v6]:port` from a gateway's list; undefined when unreadable (ignored). */
function parseAddress(text: string): HostPort | undefined {
  try {
    return parseHostPort('gateways', text);
  } catch {
    return undefined;
  }
}
