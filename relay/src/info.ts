import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import ssh2 from 'ssh2';
import type { RelayConfig } from './config/config.js';
import { fingerprintOf } from './core/ssh-public-key.js';
import { readTlsFingerprint, selfSignedPaths, tlsWanted } from './tls/tls-material.js';
import { RELAY_VERSION } from './version.js';

/** What `lifeline-relay info` reports: what a client needs to trust this relay, read from disk only. */
export interface RelayReport {
  version: string;
  /** Undefined until the relay has started once. */
  relayId: string | null;
  dataDir: string;
  apiUrl: string;
  tls:
    | { enabled: false; mode: string }
    | { enabled: true; mode: string; origin: 'self-signed' | 'configured'; certificate: string; fingerprint: string | null; validTo: string | null; subjectAltNames: string | null };
  sshHostKey: { fingerprint: string | null; source: string };
  ports: { ssh: number; vnc: number };
  adminToken: { path: string; exists: boolean };
}

function storedRelayId(dataDir: string): string | null {
  const file = join(dataDir, 'lifeline.db');
  if (!existsSync(file)) return null;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT value FROM meta WHERE key = 'relayId'").get() as { value: string } | undefined)?.value ?? null;
  } catch {
    return null;
  } finally {
    db.close();
  }
}

function hostKeyFingerprint(dataDir: string): RelayReport['sshHostKey'] {
  const fromEnvironment = process.env.LIFELINE_SSH_HOST_KEY;
  const source = fromEnvironment ? 'LIFELINE_SSH_HOST_KEY' : join(dataDir, 'ssh_host_ed25519_key');
  let text: string;
  try {
    text = fromEnvironment ?? readFileSync(source, 'utf8');
  } catch {
    return { fingerprint: null, source };
  }
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) return { fingerprint: null, source };
  return { fingerprint: fingerprintOf(parsed.getPublicSSH()), source };
}

export function relayReport(config: RelayConfig): RelayReport {
  const secure = tlsWanted(config);
  const host = config.api.host.includes(':') ? `[${config.api.host}]` : config.api.host;
  let tls: RelayReport['tls'] = { enabled: false, mode: config.api.tls.mode };
  if (secure) {
    const certificate = config.api.tls.cert ?? selfSignedPaths(config.dataDir).cert;
    const read = readTlsFingerprint(certificate);
    tls = {
      enabled: true,
      mode: config.api.tls.mode,
      origin: config.api.tls.cert ? 'configured' : 'self-signed',
      certificate,
      fingerprint: read?.fingerprint ?? null,
      validTo: read?.validTo ?? null,
      subjectAltNames: read?.subjectAltNames ?? null,
    };
  }
  const adminToken = join(config.dataDir, 'admin.token');
  return {
    version: RELAY_VERSION,
    relayId: storedRelayId(config.dataDir),
    dataDir: config.dataDir,
    apiUrl: `${secure ? 'https' : 'http'}://${host}:${config.api.port}`,
    tls,
    sshHostKey: hostKeyFingerprint(config.dataDir),
    ports: { ssh: config.ssh.port, vnc: config.vnc.port },
    adminToken: { path: adminToken, exists: existsSync(adminToken) },
  };
}

export function formatReport(report: RelayReport): string {
  const notYet = '(made at the first start)';
  const rows: Array<[string, string]> = [
    ['relay id', report.relayId ?? notYet],
    ['API URL', report.apiUrl],
  ];
  if (report.tls.enabled) {
    rows.push(['TLS certificate SHA-256', report.tls.fingerprint ?? notYet]);
    rows.push(['TLS certificate', `${report.tls.certificate} (${report.tls.origin}${report.tls.validTo ? `, valid to ${report.tls.validTo.slice(0, 10)}` : ''})`]);
    if (report.tls.subjectAltNames) rows.push(['TLS names', report.tls.subjectAltNames]);
  } else {
    rows.push(['TLS', `off (api.tls: ${report.tls.mode}); the API and VNC links are plain HTTP`]);
  }
  rows.push(['SSH host key', report.sshHostKey.fingerprint ?? notYet]);
  rows.push(['SSH / VNC ports', `${report.ports.ssh} / ${report.ports.vnc}${report.tls.enabled ? ' (VNC over https/wss)' : ''}`]);
  rows.push(['admin token', report.adminToken.exists ? report.adminToken.path : `${report.adminToken.path} ${notYet}, or LIFELINE_ADMIN_TOKEN`]);
  rows.push(['data folder', report.dataDir]);
  const width = Math.max(...rows.map(([label]) => label.length));
  return `Lifeline relay ${report.version}\n${rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`).join('\n')}\n`;
}
