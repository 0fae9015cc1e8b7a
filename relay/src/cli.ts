import { parseArgs } from 'node:util';
import { dirname, join } from 'node:path';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { lockDataDir } from './data-lock.js';
import { PostgresStore } from './store/postgres-store.js';
import { importStore } from './store/store-import.js';
import postgres from 'postgres';
import { auditFiles } from './audit/audit-format.js';
import { AUDIT_HEAD_META, parseAuditHead, verifyAuditTrail, verifyChain } from './audit/audit-verify.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { RelayConfig } from './config/config.js';
import { ConfigError, loadConfigFile } from './config/load-config.js';
import { formatReport, relayReport } from './info.js';
import { labDown, labUp, LabError } from './lab/lab.js';
import { createAgent } from './fleet/agent.js';
import { agentReport, formatInfo, gatewayReport } from './fleet/fleet-info.js';
import { createLogger, type Logger } from './logger.js';
import { onShutdown } from './process/shutdown.js';
import type { RelayReadyMessage } from './process/ready-message.js';
import { createRelay } from './relay.js';
import { RecordingLibrary } from './recordings/recording-library.js';
import { sealedManifests, verifyRecordings } from './recordings/recording-verify.js';
import { RELAY_VERSION } from './version.js';

const USAGE = `lifeline-relay ${RELAY_VERSION}: VM serial and VNC consoles over SSH, governed by Console resources

Usage:
  lifeline-relay serve --config FILE        run the relay in the foreground (YAML or JSON config)
  lifeline-relay lab up [--vms N] [--dir DIR]
                                            build (once) and boot N tiny QEMU lab VMs, write DIR/relay.yaml
  lifeline-relay info --config FILE [--json]
                                            what a client needs to trust this relay (offline): its id, API URL,
                                            TLS certificate and SSH host key fingerprints, the admin token's path
  lifeline-relay audit verify --config FILE check the audit trail's hash chain (a gateway's: the fleet's, in
                                            its database); names the first bad line
  lifeline-relay audit export --config FILE [--out FILE]
                                            write the trail as JSONL (one event per line), to stdout or FILE
  lifeline-relay store import --config GATEWAY_FILE --from lifeline.db
                                            bring a stopped standalone relay's consoles (access ids kept),
                                            endpoints and API tokens into the fleet's database
  lifeline-relay recordings verify --config FILE [--id ID]
                                            check each recording's segments against its manifest and the
                                            manifest against the audit trail's seal; names what does not match
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

async function info(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } }, strict: true });
  const config = readConfig('info', values.config);
  if (config.role === 'gateway' || config.role === 'agent') {
    const fleetReport = config.role === 'agent' ? agentReport(config) : await gatewayReport(config, process.env).catch((error: Error) => fail(`cannot read the fleet's database: ${error.message}`, 1));
    process.stdout.write(values.json ? `${JSON.stringify(fleetReport, null, 2)}\n` : formatInfo(fleetReport));
    return;
  }
  const report = relayReport(config);
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
}

/** The trail's lines, oldest first: the relay's files, or a gateway's fleet table (read-only: nothing is migrated or written). */
async function trailLines(config: RelayConfig): Promise<string[]> {
  if (config.role !== 'gateway' || !config.gateway) return auditFiles(config.dataDir).flatMap((file) => readFileSync(file, 'utf8').split('\n').filter(Boolean));
  const sql = postgres(config.gateway.postgresUrl, { max: 1, connect_timeout: 10, onnotice: () => {} });
  try {
    const [table] = await sql`SELECT to_regclass('audit_events') AS name`;
    if (!table?.name) return [];
    return (await sql`SELECT line FROM audit_events ORDER BY seq`).map((row) => row.line as string);
  } catch (error) {
    fail(`cannot read the fleet's audit trail from its database: ${(error as Error).message}`, 1);
  } finally {
    await sql.end({ timeout: 2 });
  }
}

async function audit(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action !== 'verify' && action !== 'export') fail(`unknown audit action "${action ?? ''}"; use "audit verify --config FILE" or "audit export --config FILE [--out FILE]"`);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, out: { type: 'string', short: 'o' } }, strict: true });
  const config = readConfig(`audit ${action}`, values.config);
  const fleet = config.role === 'gateway';
  if (action === 'export') {
    // Today's JSONL format, whichever trail it comes from: one event per line, chained by prev/hash.
    const text = (await trailLines(config)).map((line) => `${line}\n`).join('');
    if (values.out) writeFileSync(values.out, text, { mode: 0o600 });
    else process.stdout.write(text);
    return;
  }
  // What the relay last wrote, as its store recorded it: a trail that no longer reaches it was cut at the tail or replaced.
  const recorded = fleet ? undefined : parseAuditHead(SqliteStore.readMeta(join(config.dataDir, 'lifeline.db'), AUDIT_HEAD_META));
  const result = fleet ? verifyChain([{ file: 'the fleet database (audit_events)', lines: await trailLines(config) }], 'the fleet database (audit_events)') : verifyAuditTrail(config.dataDir, recorded);
  if (!result.ok) {
    process.stdout.write(`FAILED: ${result.file}${result.line > 0 ? ` line ${result.line}` : ''}: ${result.problem}\n(${result.events} events verified before the failure)\n`);
    process.exit(1);
  }
  if (result.events === 0) {
    process.stdout.write(`ok: no audit events yet in ${fleet ? 'the fleet database' : config.dataDir}\n`);
    return;
  }
  const pruned = result.pruned;
  process.stdout.write(
    `ok: ${result.events} events in ${fleet ? 'the fleet database' : `${result.files} file${result.files === 1 ? '' : 's'}`}, seq ${result.firstSeq} to ${result.lastSeq}\n` +
      `head ${result.head}\n` +
      (pruned ? `note: events 1–${pruned.toSeq} are no longer kept: ${pruned.file} (seq ${pruned.fromSeq}–${pruned.toSeq}) was pruned by ${pruned.reason === 'maxAge' ? 'audit.maxAge' : 'audit.keepFiles'}, as its audit.pruned event records\n` : '') +
      (recorded || fleet ? '' : 'note: the relay\'s store holds no recorded head, so a cut at the tail cannot be told from here\n'),
  );
}

/** `store import`: a standalone relay's consoles, endpoints and tokens into the fleet's database. */
async function store(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action !== 'import') fail(`unknown store action "${action ?? ''}"; use "store import --config gateway.yaml --from path/to/lifeline.db"`);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, from: { type: 'string' } }, strict: true });
  const config = readConfig('store import', values.config);
  if (config.role !== 'gateway' || !config.gateway) fail('store import brings a standalone relay into a fleet: --config must be a gateway\'s config (role: gateway)');
  if (!values.from) fail('store import needs --from path/to/lifeline.db (the standalone relay\'s store, in its dataDir)');
  if (!existsSync(values.from)) fail(`--from ${values.from}: no such file (a standalone relay keeps it at <dataDir>/lifeline.db)`);
  // The standalone relay must be stopped: what it writes after the copy would be lost.
  let unlock: () => void;
  try {
    unlock = lockDataDir(dirname(values.from));
  } catch (error) {
    fail(`${(error as Error).message.replace(/; stop it first.*/, '')}: stop it before importing its store`, 1);
  }
  try {
    const from = new SqliteStore(values.from);
    const to = await PostgresStore.open(config.gateway.postgresUrl).catch((error: Error) => fail(`cannot open the fleet's database: ${error.message}`, 1));
    try {
      const report = await importStore(from, to);
      process.stdout.write(`imported ${report.consoles} console${report.consoles === 1 ? '' : 's'} (access ids kept), ${report.endpoints} endpoint${report.endpoints === 1 ? '' : 's'}, ${report.tokens} API token${report.tokens === 1 ? '' : 's'} from ${values.from}\n`);
      for (const skip of report.skipped) process.stdout.write(`skipped ${skip.what} ${skip.name}: ${skip.why}\n`);
    } finally {
      await from.close();
      await to.close();
    }
  } finally {
    unlock();
  }
}

async function recordings(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action !== 'verify') fail(`unknown recordings action "${action ?? ''}"; use "recordings verify --config FILE [--id ID]"`);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, id: { type: 'string' } }, strict: true });
  const config = readConfig('recordings verify', values.config);
  const library = new RecordingLibrary(config.recording, () => undefined, createLogger('silent'));
  const { lines, ok } = verifyRecordings(library, sealedManifests(await trailLines(config)), values.id);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (!ok) process.exit(1);
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
    case 'store':
      return store(rest);
    case 'recordings':
      return recordings(rest);
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
