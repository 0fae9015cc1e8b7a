import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { AUDIT_HEAD_META, parseAuditHead, verifyAuditTrail } from './audit/audit-verify.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { RelayConfig } from './config/config.js';
import { ConfigError, loadConfigFile } from './config/load-config.js';
import { formatReport, relayReport } from './info.js';
import { labDown, labUp, LabError } from './lab/lab.js';
import { createAgent } from './fleet/agent.js';
import { createLogger, type Logger } from './logger.js';
import { onShutdown } from './process/shutdown.js';
import type { RelayReadyMessage } from './process/ready-message.js';
import { createRelay } from './relay.js';
import { RELAY_VERSION } from './version.js';

const USAGE = `lifeline-relay ${RELAY_VERSION}: VM serial and VNC consoles over SSH, governed by Console resources

Usage:
  lifeline-relay serve --config FILE        run the relay in the foreground (YAML or JSON config)
  lifeline-relay lab up [--vms N] [--dir DIR]
                                            build (once) and boot N tiny QEMU lab VMs, write DIR/relay.yaml
  lifeline-relay info --config FILE [--json]
                                            what a client needs to trust this relay (offline): its id, API URL,
                                            TLS certificate and SSH host key fingerprints, the admin token's path
  lifeline-relay audit verify --config FILE check the audit trail's hash chain; names the first bad line
  lifeline-relay lab down [--dir DIR]       stop the lab VMs started in DIR
  lifeline-relay --version | --help

Docs: docs/relay.md (CLI and config), docs/api.md (control API), docs/security.md (TLS, tokens, audit), docs/lab.md (lab VMs).`;

function fail(message: string, code = 2): never {
  process.stderr.write(`lifeline-relay: ${message}\n`);
  process.exit(code);
}

function readConfig(command: string, file: string | undefined): RelayConfig {
  if (!file) fail(`${command} needs --config FILE (see docs/relay.md for the format)`);
  try {
    return loadConfigFile(file);
  } catch (error) {
    if (error instanceof ConfigError) fail(`invalid config ${file}: ${error.message}`);
    throw error;
  }
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  const config = readConfig('serve', values.config);
  const log = createLogger(config.log.level);
  if (config.role === 'agent') return serveAgent(config, log);
  let relay;
  try {
    relay = await createRelay(config, { log, adminTokenFromEnvironment: process.env.LIFELINE_ADMIN_TOKEN, hostKeyFromEnvironment: process.env.LIFELINE_SSH_HOST_KEY || undefined, fleetSecret: process.env.LIFELINE_FLEET_SECRET || undefined });
  } catch (error) {
    log.fatal({ err: (error as Error).message }, 'relay failed to start');
    fail((error as Error).message, 1);
  }
  const ready = {
    api: relay.apiUrl,
    ...(relay.tls && { tlsFingerprint: relay.tls.fingerprint, tlsCertificate: relay.tls.origin }),
    endpoints: relay.endpoints.list().map(({ name, ipAddress, advertiseAddress, sshPort }) => ({ name, ipAddress, advertiseAddress, sshPort })),
    virtualMachines: config.virtualMachines.map((vm) => vm.name),
  };
  log.info(ready, 'relay ready');
  // A parent that started the relay with an IPC channel (the desktop's embedded relay) hears it as a message, not a log line to scrape.
  if (process.send) {
    const message: RelayReadyMessage = { type: 'lifeline-relay.ready', ...ready };
    process.send(message);
    process.channel?.unref();
  }
  // However the relay ends (a signal, or a bug that escapes every handler: logged, sessions told
  // why, store flushed, a failure code for the supervisor to restart it), it closes once; a
  // second signal, or a close that hangs for 10 s, ends the process anyway.
  onShutdown({ graceMs: 10_000, log: (message) => log.error(message) }, async ({ signal, error }) => {
    if (error !== undefined) {
      log.fatal({ err: error instanceof Error ? { message: error.message, stack: error.stack } : String(error) }, 'uncaught exception: shutting down'); // an unhandled rejection too: Node raises it as one
      await relay.close('the relay hit an internal error and is restarting');
      return;
    }
    log.info({ signal: signal ?? 'none' }, 'shutting down');
    try {
      await relay.close();
    } catch (closeError) {
      log.error({ err: (closeError as Error).message }, 'error while shutting down');
      throw closeError;
    }
    log.info('relay stopped');
  });
}

/** `role: agent`: this hypervisor's VMs, served to the fleet's gateways through the tunnels it dials. */
async function serveAgent(config: RelayConfig, log: Logger): Promise<void> {
  let agent;
  try {
    agent = await createAgent(config, { log, joinToken: process.env.LIFELINE_JOIN_TOKEN || undefined });
  } catch (error) {
    log.fatal({ err: (error as Error).message }, 'agent failed to start');
    fail((error as Error).message, 1);
  }
  log.info({ agent: config.agent?.name, key: agent.keyFingerprint }, 'agent ready');
  onShutdown({ graceMs: 10_000, log: (message) => log.error(message) }, async ({ signal, error }) => {
    if (error !== undefined) log.fatal({ err: error instanceof Error ? { message: error.message, stack: error.stack } : String(error) }, 'uncaught exception: shutting down');
    else log.info({ signal: signal ?? 'none' }, 'shutting down');
    await agent.close(error === undefined ? 'the agent is shutting down' : 'the agent hit an internal error and is restarting');
    log.info('agent stopped');
  });
}

async function lab(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: { vms: { type: 'string' }, dir: { type: 'string' }, 'cache-dir': { type: 'string' } },
    strict: true,
  });
  const dir = values.dir ?? './lifeline-lab';
  try {
    if (action === 'up') {
      const count = Number(values.vms ?? '2');
      if (!Number.isInteger(count) || count < 1 || count > 32) fail('--vms must be a whole number from 1 to 32');
      const result = await labUp({ dir, count, cacheDir: values['cache-dir'], progress: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(`${result.configPath}\n`);
    } else if (action === 'down') {
      await labDown({ dir, progress: (line) => process.stderr.write(`${line}\n`) });
    } else {
      fail(`unknown lab action "${action ?? ''}"; use "lab up" or "lab down"\n\n${USAGE}`);
    }
  } catch (error) {
    if (error instanceof LabError) fail(error.message, 1);
    throw error;
  }
}

function info(args: string[]): void {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } }, strict: true });
  const config = readConfig('info', values.config);
  const report = relayReport(config);
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
}

function audit(args: string[]): void {
  const [action, ...rest] = args;
  if (action !== 'verify') fail(`unknown audit action "${action ?? ''}"; use "audit verify --config FILE"`);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true });
  const config = readConfig('audit verify', values.config);
  // What the relay last wrote, as its store recorded it: a trail that no longer reaches it was cut at the tail or replaced.
  const recorded = parseAuditHead(SqliteStore.readMeta(join(config.dataDir, 'lifeline.db'), AUDIT_HEAD_META));
  const result = verifyAuditTrail(config.dataDir, recorded);
  if (!result.ok) {
    process.stdout.write(`FAILED: ${result.file}${result.line > 0 ? ` line ${result.line}` : ''}: ${result.problem}\n(${result.events} events verified before the failure)\n`);
    process.exit(1);
  }
  if (result.events === 0) {
    process.stdout.write(`ok: no audit events yet in ${config.dataDir}\n`);
    return;
  }
  const pruned = result.pruned;
  process.stdout.write(
    `ok: ${result.events} events in ${result.files} file${result.files === 1 ? '' : 's'}, seq ${result.firstSeq} to ${result.lastSeq}\n` +
      `head ${result.head}\n` +
      (pruned ? `note: events 1–${pruned.toSeq} are no longer kept: ${pruned.file} (seq ${pruned.fromSeq}–${pruned.toSeq}) was pruned by ${pruned.reason === 'maxAge' ? 'audit.maxAge' : 'audit.keepFiles'}, as its audit.pruned event records\n` : '') +
      (recorded ? '' : 'note: the relay\'s store holds no recorded head, so a cut at the tail cannot be told from here\n'),
  );
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'info':
      return info(rest);
    case 'audit':
      return audit(rest);
    case 'lab':
      return lab(rest);
    case '--version':
    case '-v':
      process.stdout.write(`${RELAY_VERSION}\n`);
      return;
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      fail(command ? `unknown command "${command}"\n\n${USAGE}` : USAGE);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  fail(message, 1);
});
