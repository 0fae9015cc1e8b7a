import { Option, type Command } from 'commander';
import type { VirtualMachineResource } from '@lifeline/relay/client';
import { CliError, usageError } from './errors.js';
import { confirm, contextOf, parseDurationMs, parseRfc3339, print, printOne, say, timeLeft } from './kit.js';

const POWER_ACTIONS = { reset: 'reset', shutdown: 'shutdown', 'power-off': 'powerOff', 'power-on': 'powerOn', nmi: 'nmi' } as const;
type PowerWord = keyof typeof POWER_ACTIONS;

const vmColumns = [
  { heading: 'name', value: (v: VirtualMachineResource) => v.name },
  { heading: 'power', value: (v: VirtualMachineResource) => v.powerState },
  { heading: 'consoles', value: (v: VirtualMachineResource) => v.consoleTypes.join(',') },
  { heading: 'console', value: (v: VirtualMachineResource) => (v.console ? `${v.console.detailedStatus} (${timeLeft(v.console.expiration)})` : 'none') },
  { heading: 'agent', value: (v: VirtualMachineResource) => (v as { agent?: string }).agent },
];

const list = (items: string[] | undefined): string[] => (items ?? []).flatMap((item) => item.split(',')).map((item) => item.trim()).filter(Boolean);
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerOperationCommands(program: Command): void {
  const vm = program.command('vm').description('the VMs a relay serves');
  vm.command('list')
    .description('the VMs, their power state and consoles')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay();
      const vms = await api.virtualMachines();
      print(context, vms, vms, vmColumns, 'The relay serves no VMs.');
    });
  vm.command('show <vm>')
    .description('one VM')
    .action(async (name: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay(name);
      const found = await api.virtualMachine(name);
      printOne(context, found, [['name', found.name], ['powerState', found.powerState], ['consoleTypes', found.consoleTypes.join(', ')], ['powerActions', (found.powerActions ?? []).join(', ')], ['serialBreak', found.serialBreak], ['console', found.console ? `${found.console.detailedStatus}, expires ${found.console.expiration}` : 'none'], ['agent', (found as { agent?: string }).agent]]);
    });

  program
    .command('power <vm> <action>')
    .description(`a power action: ${Object.keys(POWER_ACTIONS).join(', ')} (asks first unless --yes)`)
    .action(async (name: string, action: string, _options: unknown, command: Command) => {
      if (!(action in POWER_ACTIONS)) throw usageError(`The power action must be one of ${Object.keys(POWER_ACTIONS).join(', ')}; not "${action}".`);
      const context = contextOf(command);
      const { api } = await context.relay(name);
      await api.virtualMachine(name);
      await confirm(context, `${action} ${name}?`);
      const accepted = await api.powerAction(name, POWER_ACTIONS[action as PowerWord]);
      printOne(context, accepted, [['virtualMachine', accepted.virtualMachine], ['action', action], ['status', accepted.status]]);
    });

  const sessions = program.command('sessions').description('console sessions open now');
  sessions
    .command('list')
    .description('every open serial and VNC session (the whole fleet on a gateway)')
    .option('--vm <vm>', 'only this VM')
    .action(async (options: { vm?: string }, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay(options.vm);
      const open = (await api.sessions()).filter((s) => !options.vm || s.virtualMachine === options.vm);
      print(context, open, open, [
        { heading: 'id', value: (s) => s.id },
        { heading: 'vm', value: (s) => s.virtualMachine },
        { heading: 'kind', value: (s) => s.kind },
        { heading: 'role', value: (s) => s.role ?? 'controller' },
        { heading: 'path', value: (s) => s.path },
        { heading: 'from', value: (s) => s.remoteAddress },
        { heading: 'started', value: (s) => s.startedAt },
        { heading: 'in/out', value: (s) => `${s.bytesIn}/${s.bytesOut}` },
        { heading: 'gateway', value: (s) => s.gateway },
      ], 'No open sessions.');
    });
  sessions
    .command('close <id>')
    .description('close a session (its client is told: closed by an administrator)')
    .action(async (id: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay();
      await confirm(context, `Close the session ${id}?`);
      await api.closeSession(id);
      say(`Closed the session ${id}.`);
    });
  sessions
    .command('take-control <id>')
    .description('make an observer the controller of its console by force (the controller becomes an observer; audited)')
    .requiredOption('--reason <text>', 'why: recorded in the audit trail and told to everyone on the console')
    .action(async (id: string, options: { reason: string }, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay();
      await confirm(context, `Give session ${id} control of its console by force?`);
      const session = await api.takeControl(id, options.reason);
      printOne(context, session, [['id', session.id], ['vm', session.virtualMachine], ['role', session.role]]);
    });

  const tokens = program.command('tokens').description("the relay's API tokens (scopes, VM limits)");
  tokens
    .command('create <name>')
    .description('a new API token: its secret is shown once')
    .requiredOption('--scopes <scopes>', 'comma-separated: consoles:read, consoles:write, vnc, power, endpoints, sessions, audit, metrics, recordings, admin', collect)
    .option('--vm <glob>', 'limit it to VMs matching the glob (repeat for more)', collect)
    .addOption(new Option('--expires-in <duration>', 'from now: 12h, 30d').argParser(parseDurationMs))
    .action(async (name: string, options: { scopes: string[]; vm?: string[]; expiresIn?: number }, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay();
      const vms = list(options.vm);
      const created = await api.createToken({ name, scopes: list(options.scopes) as never, ...(vms.length && { virtualMachines: vms }), ...(options.expiresIn !== undefined && { expiresAt: new Date(Date.now() + options.expiresIn).toISOString() }) });
      if (context.flags.output === 'table') say('The token is shown this once: keep it now.');
      printOne(context, created, [['id', created.id], ['name', created.name], ['scopes', created.scopes.join(', ')], ['virtualMachines', created.virtualMachines?.join(', ') ?? 'all'], ['expiresAt', created.expiresAt ?? 'never'], ['token', created.token]]);
    });
  tokens
    .command('list')
    .description('the tokens (never their secrets)')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay();
      const all = await api.tokens();
      print(context, all, all, [
        { heading: 'id', value: (t) => t.id },
        { heading: 'name', value: (t) => t.name },
        { heading: 'prefix', value: (t) => t.prefix },
        { heading: 'scopes', value: (t) => t.scopes.join(',') },
        { heading: 'vms', value: (t) => t.virtualMachines?.join(',') ?? 'all' },
        { heading: 'expires', value: (t) => t.expiresAt ?? 'never' },
        { heading: 'last used', value: (t) => t.lastUsedAt },
      ]);
    });
  tokens
    .command('delete <id>')
    .description('revoke a token at once')
    .action(async (id: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay();
      await confirm(context, `Revoke the token ${id}? Whoever uses it is refused from now on.`);
      await api.deleteToken(id);
      say(`Revoked the token ${id}.`);
    });

  program
    .command('audit')
    .description("the relay's audit trail")
    .command('list')
    .description('audit events, oldest first (--follow: then new ones as they come)')
    .option('--vm <vm>', 'only events of this VM')
    .addOption(new Option('--since <time>', 'RFC 3339: from this time on').argParser(parseRfc3339))
    .option('--limit <n>', 'at most this many (1-1000) before --follow', '100')
    .option('--follow', 'keep printing new events until Ctrl-C')
    .action(async (options: { vm?: string; since?: string; limit: string; follow?: boolean }, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay(options.vm);
      if (!/^\d{1,4}$/.test(options.limit) || Number(options.limit) < 1 || Number(options.limit) > 1000) throw usageError('--limit must be 1 to 1000.');
      const line = (e: { seq: number; time: string; type: string } & Record<string, unknown>): string =>
        context.flags.output === 'table' ? `${e.time}  ${String(e.seq).padStart(6)}  ${(e.type === 'api' ? String(e.action) : e.type).padEnd(26)} ${describeEvent(e)}\n` : `${JSON.stringify(e)}\n`;
      let page = await api.auditEvents({ vm: options.vm, since: options.since, limit: options.limit });
      if (!options.follow) {
        if (context.flags.output === 'table') for (const event of page.value) process.stdout.write(line(event));
        else print(context, page.value, [], []);
        if (page.nextAfterSeq !== undefined && context.flags.output === 'table') say(`More events: --since, or a higher --limit.`);
        return;
      }
      // --follow prints one event per line (JSON Lines with -o json/yaml), then polls for new ones.
      let after = page.value.at(-1)?.seq;
      for (const event of page.value) process.stdout.write(line(event));
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        page = await api.auditEvents({ vm: options.vm, limit: '1000', ...(after !== undefined ? { afterSeq: String(after) } : { since: options.since }) });
        for (const event of page.value) process.stdout.write(line(event));
        after = page.value.at(-1)?.seq ?? after;
      }
    });

  program
    .command('agents')
    .description("a fleet gateway's hypervisor agents")
    .command('list')
    .description('the agents, their state and VMs')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay();
      const agents = await api.agents();
      print(context, agents, agents, [
        { heading: 'name', value: (a) => a.name },
        { heading: 'state', value: (a) => a.state },
        { heading: 'gateways', value: (a) => a.gateways.join(',') },
        { heading: 'vms', value: (a) => a.virtualMachines.length },
        { heading: 'last seen', value: (a) => a.lastSeenAt },
        { heading: 'conflicts', value: (a) => a.conflicts.map((c) => c.name).join(',') },
        { heading: 'version', value: (a) => a.version },
      ], 'No agents have joined: see docs/fleet.md (POST /v1/agentJoinTokens).');
    });

  const endpoints = program.command('endpoints').description('private endpoints (where consoles are reached)');
  endpoints
    .command('create <name>')
    .description('create or change a private endpoint')
    .option('--ip <address>', 'its address (default: the next free one of the relay\'s addressPool)')
    .option('--allow <cidr>', 'a source prefix allowed to connect (repeat, or comma-separate)', collect)
    .action(async (name: string, options: { ip?: string; allow?: string[] }, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay();
      const allowed = list(options.allow);
      const endpoint = await api.putEndpoint(name, { ...(options.ip && { ipAddress: options.ip }), ...(allowed.length && { allowedSourcePrefixes: allowed }) });
      printOne(context, endpoint, [['name', endpoint.name], ['ipAddress', endpoint.ipAddress], ['sshPort', endpoint.sshPort], ['vncPort', endpoint.vncPort], ['allowedSourcePrefixes', endpoint.allowedSourcePrefixes.join(', ')], ['provisioningState', endpoint.provisioningState]]);
    });
  endpoints
    .command('list')
    .description('the private endpoints')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const { api } = await context.relay();
      const all = await api.endpoints();
      print(context, all, all, [
        { heading: 'name', value: (e) => e.name },
        { heading: 'address', value: (e) => e.advertiseAddress ?? e.ipAddress },
        { heading: 'ssh', value: (e) => e.sshPort },
        { heading: 'vnc', value: (e) => e.vncPort },
        { heading: 'allowed', value: (e) => e.allowedSourcePrefixes.join(',') },
        { heading: 'state', value: (e) => e.provisioningState },
      ]);
    });
  endpoints
    .command('delete <name>')
    .description('delete a private endpoint: sessions through it close')
    .action(async (name: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const { record, api } = await context.relay();
      if (name === 'default') throw new CliError('The default endpoint cannot be deleted (it is in the relay\'s config).');
      if (record.endpoint === name) throw new CliError(`Consoles of this relay are opened through "${name}" (the desktop's choice): choose another endpoint in the desktop app first.`);
      await confirm(context, `Delete the endpoint ${name}? Sessions through it close.`);
      await api.deleteEndpoint(name);
      say(`Deleted the endpoint ${name}.`);
    });
}

/** The event's main facts on one line: its VM, who, why. */
function describeEvent(event: Record<string, unknown>): string {
  const skip = new Set(['seq', 'time', 'type', 'prev', 'hash', 'action', 'request']);
  return Object.entries(event)
    .filter(([key]) => !skip.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join(' ');
}
