import { realpathSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import type { CliContext } from './context.js';
import { CliError, EXIT } from './errors.js';
import { privateRuntimeDir, startKeyAgent } from './key-agent.js';
import { checkHeldKey, consoleTarget, hostKeyAlias, knownHostsFile, pinHostKey, slug } from './openssh.js';

/** One `Host` block: a VM whose console holds the key this user keeps in the keychain. */
export interface SshHostEntry {
  host: string;
  relay: string;
  virtualMachine: string;
  hostName: string;
  port: number;
  user: string;
  hostKeyAlias: string;
  identityAgent: string;
}

/** How OpenSSH runs this CLI again (ProxyCommand): `LIFELINE_CLI`, else this Node and this script. */
function selfCommand(): string {
  if (process.env.LIFELINE_CLI) return process.env.LIFELINE_CLI;
  const quote = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`);
  return [process.execPath, realpathSync(process.argv[1]!)].map(quote).join(' ');
}

/** The agent socket a VM's `lifeline proxy` serves and its Host block names. */
const agentSocket = (runtime: string, name: string): string => join(runtime, `agent-${name}.sock`);

/** The Host entries for every relay (or the one --relay names) and VM with a console this user holds the key of. */
export async function sshHostEntries(context: CliContext, prefix: string): Promise<{ entries: SshHostEntry[]; skipped: string[] }> {
  const records = context.flags.relay || process.env.LIFELINE_RELAY ? [(await context.relay()).record] : context.registry.records();
  const runtime = privateRuntimeDir();
  const entries: SshHostEntry[] = [];
  const skipped: string[] = [];
  const taken = new Map<string, number>();
  for (const record of records) {
    let api;
    try {
      api = await context.apiFor(record);
      await pinHostKey(context, record, api);
    } catch (error) {
      skipped.push(`relay ${record.name}: ${(error as Error).message}`);
      continue;
    }
    const endpoint = (await api.endpoints()).find((e) => e.name === record.endpoint);
    for (const vm of await api.virtualMachines()) {
      const own = vm.console ? await context.keys.own(record.id, vm.name) : undefined;
      if (!vm.console || !own || own.fingerprint !== vm.console.keyFingerprint || !endpoint) continue;
      const name = slug(record, vm.name);
      taken.set(vm.name, (taken.get(vm.name) ?? 0) + 1);
      entries.push({
        host: `${prefix}${vm.name}`,
        relay: record.name,
        virtualMachine: vm.name,
        hostName: endpoint.advertiseAddress ?? endpoint.ipAddress,
        port: endpoint.sshPort,
        user: vm.console.virtualMachineAccessId,
        hostKeyAlias: hostKeyAlias(record),
        identityAgent: agentSocket(runtime, name),
      });
    }
  }
  // A VM name on two relays: both get the relay's name in front.
  for (const entry of entries) if ((taken.get(entry.virtualMachine) ?? 0) > 1) entry.host = `${prefix}${entry.relay}.${entry.virtualMachine}`;
  return { entries, skipped };
}

/** The blocks as ~/.ssh/config takes them. */
export function renderSshConfig(context: CliContext, entries: SshHostEntry[]): string {
  const self = selfCommand();
  const records = context.registry.records();
  const blocks = entries.map((entry) => {
    const record = records.find((r) => r.name === entry.relay)!;
    return [
      `Host ${entry.host}`,
      `  HostName ${entry.hostName}`,
      `  Port ${entry.port}`,
      `  User ${entry.user}`,
      `  HostKeyAlias ${entry.hostKeyAlias}`,
      `  UserKnownHostsFile ${knownHostsFile(context)}`,
      '  StrictHostKeyChecking yes',
      '  CheckHostIP no',
      '  UpdateHostKeys no',
      '  PreferredAuthentications publickey',
      // No IdentitiesOnly/IdentityFile: ssh reads identity files before it starts the ProxyCommand, so a key
      // rotated since this block was written would not be offered; the agent's one key (the current one) goes first.
      `  IdentityAgent ${entry.identityAgent}`,
      `  ProxyCommand ${self} proxy --relay ${record.id} --user %r ${entry.virtualMachine}`,
      '  RequestTTY yes',
      '  ForwardAgent no',
      '  ForwardX11 no',
    ].join('\n');
  });
  const header = [
    `# Lifeline consoles (written by "lifeline config ssh" at ${new Date().toISOString()}).`,
    '# Save it, e.g. lifeline config ssh > ~/.ssh/lifeline.conf, and put "Include lifeline.conf" at the top of ~/.ssh/config.',
    '# The key comes from the OS keychain through the ProxyCommand\'s agent; run this again after a console is recreated.',
  ];
  return `${[header.join('\n'), ...blocks].join('\n\n')}\n`;
}

/**
 * `lifeline proxy VM`: the ProxyCommand of the Host blocks. It checks the console (saying what to
 * do when it is disabled, expired, recreated or holds another key), serves the keychain's key on
 * the block's agent socket, and bridges stdin/stdout to the relay's SSH port.
 */
export async function proxy(context: CliContext, vm: string, user: string | undefined): Promise<number> {
  const { record, api } = await context.relay(vm);
  const target = await consoleTarget(api, record, vm);
  if (user !== undefined && user !== target.user) {
    throw new CliError(`The console of ${vm} was recreated: its access id is now ${target.user}, not ${user}. Run "lifeline config ssh" again.`);
  }
  const key = checkHeldKey(vm, target.console, await context.keys.own(record.id, vm));
  const agent = await startKeyAgent(key.privateKey, agentSocket(privateRuntimeDir(), slug(record, vm)));
  try {
    return await new Promise<number>((resolve) => {
      const socket = tcpConnect({ host: target.host, port: target.port, noDelay: true });
      socket.once('error', (error) => {
        process.stderr.write(`lifeline proxy: cannot reach ${target.host}:${target.port} (${(error as NodeJS.ErrnoException).code ?? error.message}).\n`);
        resolve(EXIT.connectionFailed);
      });
      socket.once('connect', () => {
        process.stdin.pipe(socket);
        socket.pipe(process.stdout);
      });
      socket.once('close', () => resolve(EXIT.ok));
      process.stdin.once('end', () => socket.end());
      // OpenSSH ends its ProxyCommand with a signal when it is done: the agent socket goes too.
      for (const signal of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.once(signal, () => resolve(EXIT.ok));
    });
  } finally {
    await agent.close();
  }
}
