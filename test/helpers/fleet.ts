import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import { ephemeralConfig, RELAY_BIN, startRelay, type RelayProcess } from './relay-process.js';
import { waitUntil } from './wait.js';

// Every gateway of a fleet gets the same admin token and fleet secret (a Kubernetes Secret would carry them).
export const FLEET_ADMIN_TOKEN = 'llt_fleetAdminTokenForTheGatewayTests0123456789abcdefXYZ';
export const FLEET_SECRET = 'fleet-secret-for-the-gateway-tests-0123456789';
export const FLEET_ENV = { LIFELINE_ADMIN_TOKEN: FLEET_ADMIN_TOKEN, LIFELINE_FLEET_SECRET: FLEET_SECRET };

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `lifeline-relay serve` with an agent config and waits for its "agent ready" line. */
export async function startAgent(configPath: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<AgentProcess> {
  const child = spawn(process.execPath, [...nodeArgs, RELAY_BIN, 'serve', '--config', configPath], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not become ready in 20 s:\n${output}`)), 20_000);
    const check = (): void => {
      if (!output.includes('"agent ready"')) return;
      clearTimeout(timer);
      resolve();
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code} before it was ready:\n${output}`));
    });
  });
  let stopping: Promise<number | null> | undefined;
  return {
    child,
    output: () => output,
    stop(signal = 'SIGTERM') {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        if (signal === 'SIGSTOP') return null;
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      })();
      return stopping;
    },
  };
}

export interface TestFleet {
  pg: TestPostgres;
  url: string;
  gateways: RelayProcess[];
  /** Where agents dial each gateway (`127.0.0.1:port`). */
  agentAddresses: string[];
  /** Writes an agent config, makes it a join token through the first gateway, and starts it. */
  addAgent(name: string, settings: Record<string, unknown>): Promise<AgentProcess>;
  /** Waits until GET /v1/agents on every gateway shows `name` connected to `count` gateways. */
  waitForAgent(name: string, count?: number): Promise<void>;
  dispose(): Promise<void>;
}

/** A fleet of its own: a PostgreSQL server, `gatewayCount` gateway processes on it, and agents as the test adds them. */
export async function startFleet(dir: string, gatewayCount = 2, options: { databaseUrl?: (gateway: number, url: string, pg: TestPostgres) => Promise<string>; /** For every gateway and agent process (`--cpu-prof`). */ nodeArgs?: string[]; /** More gateway config keys (whole sections). */ gatewaySettings?: Record<string, unknown> } = {}): Promise<TestFleet> {
  const pg = await startPostgres();
  const agents: AgentProcess[] = [];
  const gateways: RelayProcess[] = [];
  const agentAddresses: string[] = [];
  const url = pg.createDatabase('fleet');
  const dispose = async (): Promise<void> => {
    await Promise.all(agents.map((agent) => agent.stop('SIGKILL')));
    await Promise.all(gateways.map((gateway) => gateway.stop()));
    pg.dispose();
  };
  try {
    for (let index = 0; index < gatewayCount; index++) {
      const gatewayUrl = options.databaseUrl ? await options.databaseUrl(index, url, pg) : url;
      // A fixed agents port per gateway, so the address it advertises is the one agents can dial. The kernel's
      // pick is free when asked but may be taken again before the gateway binds it: then another port is tried.
      for (let attempt = 1; ; attempt++) {
        const port = await freePort();
        const { configPath, dataDir } = ephemeralConfig(dir, `gw${index + 1}`, { role: 'gateway', store: { postgres: { url: gatewayUrl } }, agents: { listen: `127.0.0.1:${port}` }, ...options.gatewaySettings });
        try {
          gateways.push(await startRelay(configPath, dataDir, FLEET_ENV, options.nodeArgs));
        } catch (error) {
          if (attempt < 3 && /already in use/.test((error as Error).message)) continue;
          throw error;
        }
        agentAddresses.push(`127.0.0.1:${port}`);
        break;
      }
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    pg,
    url,
    gateways,
    agentAddresses,
    async addAgent(name, settings) {
      const joined = await gateways[0]!.api('POST', '/v1/agentJoinTokens', { agent: name });
      if (joined.status !== 201) throw new Error(`join token: ${joined.status} ${JSON.stringify(joined.body)}`);
      const configPath = join(dir, `${name}.json`);
      writeFileSync(configPath, JSON.stringify({ role: 'agent', dataDir: join(dir, `${name}-data`), agent: { name, caFingerprint: joined.body.caFingerprint }, gateways: [agentAddresses[0]], joinToken: joined.body.token, ...settings }));
      const agent = await startAgent(configPath, {}, options.nodeArgs);
      agents.push(agent);
      return agent;
    },
    async waitForAgent(name, count = gateways.length) {
      await waitUntil(
        async () => {
          for (const gateway of gateways) {
            const listed = await gateway.api('GET', '/v1/agents');
            const agent = listed.body?.value?.find((entry: { name: string }) => entry.name === name);
            if (!agent || agent.gateways.length < count) return false;
          }
          return true;
        },
        20_000,
        `agent ${name} connected to ${count} gateways`,
      );
    },
    dispose,
  };
}
