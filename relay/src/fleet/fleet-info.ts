import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import ssh2 from 'ssh2';
import type { RelayConfig } from '../config/config.js';
import { fingerprintOf } from '../core/ssh-public-key.js';
import { unseal } from '../store/sealed-secret.js';
import { RELAY_VERSION } from '../version.js';
import { hostPortText } from './agent.js';

/*
 * `lifeline-relay info` for the fleet's roles: what a client or an operator needs to trust a
 * gateway (read from the fleet's database, read-only) or to join an agent (read from its data folder).
 */

export type InfoReport = { role: 'gateway' | 'agent'; version: string } & Record<string, unknown>;

function keyFingerprint(text: string | undefined): string | null {
  if (!text) return null;
  const parsed = ssh2.utils.parseKey(text);
  return parsed instanceof Error ? null : fingerprintOf(parsed.getPublicSSH());
}

export async function gatewayReport(config: RelayConfig, env: NodeJS.ProcessEnv): Promise<InfoReport> {
  const settings = config.gateway!;
  const sql = postgres(settings.postgresUrl, { max: 1, connect_timeout: 10, onnotice: () => {} });
  try {
    const meta = new Map<string, string>();
    const [table] = await sql`SELECT to_regclass('meta') AS name`;
    if (table?.name) for (const row of await sql`SELECT key, value FROM meta WHERE key IN ('relayId', 'fleet.sshHostKey', 'fleet.tls')`) meta.set(row.key as string, row.value as string);
    const secret = env.LIFELINE_FLEET_SECRET;
    const sealedHostKey = meta.get('fleet.sshHostKey');
    const hostKey = env.LIFELINE_SSH_HOST_KEY ? keyFingerprint(env.LIFELINE_SSH_HOST_KEY) : sealedHostKey && secret ? keyFingerprint(unseal(sealedHostKey, secret)) : null;
    const tls = meta.get('fleet.tls');
    const certificate = config.api.tls.cert ? readFileSync(config.api.tls.cert) : tls ? Buffer.from((JSON.parse(tls) as { cert: string }).cert) : undefined;
    const agents = table?.name ? await sql`SELECT count(*)::int AS n FROM agents WHERE deleted_at IS NULL` : [{ n: 0 }];
    const gateways = table?.name ? await sql`SELECT id, advertise FROM gateways ORDER BY id` : [];
    return {
      role: 'gateway',
      version: RELAY_VERSION,
      relayId: meta.get('relayId') ?? null,
      sshHostKey: hostKey ?? (sealedHostKey ? '(sealed in the database: set LIFELINE_FLEET_SECRET to read it)' : null),
      tlsFingerprint: certificate ? new X509Certificate(certificate).fingerprint256 : null,
      agentsListen: hostPortText(settings.agentsListen),
      agentsAdvertise: settings.agentsAdvertise ? hostPortText(settings.agentsAdvertise) : null,
      agents: Number(agents[0]?.n ?? 0),
      gatewaysAlive: gateways.map((row) => (row.advertise as string | null) ?? (row.id as string)),
    };
  } finally {
    await sql.end({ timeout: 2 });
  }
}

export function agentReport(config: RelayConfig): InfoReport {
  const settings = config.agent!;
  const read = (file: string): string | undefined => {
    try {
      return readFileSync(join(config.dataDir, file), 'utf8');
    } catch {
      return undefined;
    }
  };
  return {
    role: 'agent',
    version: RELAY_VERSION,
    name: settings.name,
    agentKey: keyFingerprint(read('agent_ed25519_key')),
    fleetHostKey: settings.caFingerprint ?? read('fleet_host_key.fingerprint')?.trim() ?? null,
    fleetHostKeySource: settings.caFingerprint ? 'agent.caFingerprint' : read('fleet_host_key.fingerprint') ? 'trusted on first use' : null,
    gateways: settings.gateways.map(hostPortText),
    dataDir: config.dataDir,
  };
}

export function formatInfo(report: InfoReport): string {
  const notYet = '(made at the first start)';
  const rows: Array<[string, string]> =
    report.role === 'gateway'
      ? [
          ['relay id', (report.relayId as string | null) ?? notYet],
          ['SSH host key', (report.sshHostKey as string | null) ?? notYet],
          ['TLS certificate SHA-256', (report.tlsFingerprint as string | null) ?? '(none yet, or TLS off)'],
          ['agents dial', `${report.agentsListen as string}${report.agentsAdvertise ? ` (advertised as ${report.agentsAdvertise as string})` : ''}`],
          ['agents joined', String(report.agents)],
          ['gateways alive', (report.gatewaysAlive as string[]).join(', ') || '(none)'],
        ]
      : [
          ['agent name', report.name as string],
          ['agent key', (report.agentKey as string | null) ?? notYet],
          ['fleet host key', report.fleetHostKey ? `${report.fleetHostKey as string} (${report.fleetHostKeySource as string})` : '(trusted on first use at the first start; set agent.caFingerprint to pin it)'],
          ['gateways', (report.gateways as string[]).join(', ')],
          ['data folder', report.dataDir as string],
        ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return `Lifeline ${report.role} ${report.version}\n${rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`).join('\n')}\n`;
}
