import { VM_NAME, type AgentConfig, type GatewayConfig, type RelayConfig, type RelayRole } from './config.js';
import { parseHostPort, parseListen } from './listen-address.js';
import { ConfigError } from './config-error.js';
import type { ConfigDocument } from './config-schema.js';

/*
 * The fleet's keys (role, store.postgres, agents, agent, gateways, joinToken): read, and checked
 * against the role they belong to, so a key in the wrong role's config is an error that says which
 * role takes it rather than a setting silently ignored.
 */

type FleetDocument = Pick<ConfigDocument, 'role' | 'store' | 'agents' | 'agent' | 'gateways' | 'joinToken' | 'joinTokenFile'>;

const ONLY: Record<string, RelayRole> = { store: 'gateway', agents: 'gateway', agent: 'agent', gateways: 'agent', joinToken: 'agent', joinTokenFile: 'agent' };

/** The fleet part of a RelayConfig, before the environment (LIFELINE_POSTGRES_URL, LIFELINE_JOIN_TOKEN) is applied. */
export function fleetOf(document: FleetDocument): Pick<RelayConfig, 'role' | 'gateway' | 'agent'> {
  const role = document.role;
  for (const [key, owner] of Object.entries(ONLY)) {
    if (document[key as keyof FleetDocument] !== undefined && owner !== role) {
      throw new ConfigError(key, `is a setting of role: ${owner} (this config's role is ${role}); remove it, or set role: ${owner}`);
    }
  }
  if (role === 'gateway') {
    const listen = parseListen('agents.listen', document.agents?.listen ?? '0.0.0.0:3024', '0.0.0.0:3024');
    const advertise = document.agents?.advertiseAddress;
    const gateway: GatewayConfig = {
      postgresUrl: document.store?.postgres.url ?? '',
      agentsListen: listen,
      ...(advertise !== undefined && { agentsAdvertise: parseHostPort('agents.advertiseAddress', advertise) }),
    };
    return { role, gateway };
  }
  if (role === 'agent') {
    const gateways = (document.gateways ?? []).map((text, index) => parseHostPort(`gateways[${index}]`, text));
    if (gateways.length === 0) throw new ConfigError('gateways', 'needs at least one gateway an agent can dial, such as [gateway-1.example.com:3024] (it learns the others from it)');
    const agent: AgentConfig = {
      // Checked once the environment is applied (LIFELINE_AGENT_NAME).
      name: document.agent?.name ?? '',
      gateways,
      ...(document.joinToken !== undefined && { joinToken: document.joinToken }),
      ...(document.joinTokenFile !== undefined && { joinTokenFile: document.joinTokenFile }),
      ...(document.agent?.caFingerprint !== undefined && { caFingerprint: document.agent.caFingerprint }),
    };
    return { role, agent };
  }
  return { role };
}

/** Applies the environment's overrides, then the rules that need them: a gateway has a database and no VMs; an agent has VMs to serve. */
export function checkFleet(config: RelayConfig, env: NodeJS.ProcessEnv): void {
  const postgresUrl = env.LIFELINE_POSTGRES_URL?.trim();
  const joinToken = env.LIFELINE_JOIN_TOKEN?.trim();
  if (config.role === 'gateway' && config.gateway) {
    if (postgresUrl) {
      if (!/^postgres(ql)?:\/\//.test(postgresUrl)) throw new ConfigError('LIFELINE_POSTGRES_URL', 'must be a PostgreSQL URL such as postgres://lifeline@db.example.com:5432/lifeline');
      config.gateway.postgresUrl = postgresUrl;
    }
    if (!config.gateway.postgresUrl) {
      throw new ConfigError('store.postgres.url', 'is needed with role: gateway (every gateway of a fleet shares one PostgreSQL database): set store: { postgres: { url: postgres://… } } or LIFELINE_POSTGRES_URL');
    }
    if (config.virtualMachines.length > 0 || config.discover.length > 0) {
      throw new ConfigError(config.virtualMachines.length > 0 ? 'virtualMachines' : 'discover', 'a gateway holds no VM sockets: list the VMs in the config of the agent on their hypervisor');
    }
    const { host, port } = config.gateway.agentsListen;
    if (!config.gateway.agentsAdvertise) {
      // A wildcard listener is advertised at the address clients are sent to (LIFELINE_ADVERTISE_ADDRESS: a pod's IP), if there is one.
      const advertised = config.endpoints.default.advertiseAddress;
      if (host !== '0.0.0.0' && host !== '::') config.gateway.agentsAdvertise = { ...config.gateway.agentsListen };
      else if (advertised) config.gateway.agentsAdvertise = { host: advertised, port };
    }
  }
  if (config.role === 'agent' && config.agent) {
    if (joinToken) config.agent.joinToken = joinToken;
    const name = env.LIFELINE_AGENT_NAME?.trim();
    if (name) {
      if (!VM_NAME.test(name)) throw new ConfigError('LIFELINE_AGENT_NAME', `must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit, got "${name.slice(0, 64)}"`);
      config.agent.name = name;
    }
    if (!config.agent.name) throw new ConfigError('agent.name', 'is needed with role: agent: the name of this hypervisor in the fleet, such as hv-1 (unique in the fleet); or set LIFELINE_AGENT_NAME');
  }
}
