import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { ConsoleResource } from '@lifeline/relay/client';
import type { RelayView } from '../../preload/contract.js';
import type { CliContext } from './context.js';
import { readTokenFile } from './context.js';
import { CliError, usageError } from './errors.js';
import { confirm, contextOf, expirationOf, parseBoolean, parseDurationMs, parseRfc3339, print, printOne, say, timeLeft } from './kit.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0]!.trim();
}

/** An untrusted self-signed certificate: pinned when the user confirms its fingerprint at the terminal, or gives it. */
async function certificatePin(context: CliContext, url: string, given: string | undefined): Promise<string | undefined> {
  if (given || !url.trim().startsWith('https://')) return given;
  const certificate = await context.registry.inspectCertificate(url);
  if (certificate.trusted) return undefined;
  const question = `The relay's TLS certificate is not trusted by this system (${certificate.untrustedBecause}).\n  subject ${certificate.subject}, valid to ${certificate.validTo}\n  SHA-256 ${certificate.fingerprint}\nCompare it with "lifeline-relay info" on the relay.`;
  if (!process.stdin.isTTY) throw new CliError(`${question} Pin it with --tls-fingerprint ${certificate.fingerprint}.`);
  // --yes does not answer this one: trusting a certificate is the user's own check.
  await confirm({ flags: { ...context.flags, yes: false } }, `${question}\nPin it?`);
  return certificate.fingerprint;
}

const relayColumns = [
  { heading: 'name', value: (r: RelayView) => r.name },
  { heading: 'url', value: (r: RelayView) => r.url },
  { heading: 'status', value: (r: RelayView) => r.status },
  { heading: 'endpoint', value: (r: RelayView) => r.endpoint },
  { heading: 'host key', value: (r: RelayView) => r.hostKeyFingerprint },
  { heading: 'id', value: (r: RelayView) => r.id },
];

function consoleFields(vm: string, c: ConsoleResource, keyInKeychain: boolean): Array<[string, string | number | boolean | undefined]> {
  return [
    ['virtualMachine', vm],
    ['enabled', c.enabled],
    ['status', c.detailedStatus],
    ['expiration', `${c.expiration} (${timeLeft(c.expiration)})`],
    ['accessId', c.virtualMachineAccessId],
    ['keyFingerprint', c.keyFingerprint],
    ['keyInKeychain', keyInKeychain],
    ...(c.allowObservers !== undefined ? ([['allowObservers', c.allowObservers], ['maxObservers', c.maxObservers], ['recording', c.recording]] as Array<[string, string | number | boolean | undefined]>) : []),
  ];
}

/** `--key-data`, `--key-file` or `--generate`: at most one (for create, exactly one). */
function keyChoice(options: { keyData?: string; keyFile?: string; generate?: boolean }, required: boolean): { keyData?: string; generate: boolean } {
  const given = [options.keyData !== undefined, options.keyFile !== undefined, options.generate === true].filter(Boolean).length;
  if (given > 1) throw usageError('Give one of --key-data, --key-file and --generate.');
  if (required && given === 0) throw usageError('A console needs a key: --generate (a new one, kept in the keychain), --key-file F.pub or --key-data "ssh-ed25519 …".');
  if (options.keyFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.keyFile, 'utf8').trim();
    } catch (error) {
      throw new CliError(`Cannot read the key file ${options.keyFile} (${(error as NodeJS.ErrnoException).code}).`);
    }
    if (/PRIVATE KEY/.test(text)) throw new CliError(`${options.keyFile} is a private key: give its public half (${options.keyFile}.pub).`);
    return { keyData: text, generate: false };
  }
  return { ...(options.keyData !== undefined && { keyData: options.keyData.trim() }), generate: options.generate === true };
}

async function requireKeychain(context: CliContext, what: string): Promise<void> {
  if (!(await context.keychain.available())) {
    throw new CliError(`${what} keeps the private key in the OS keychain, and there is none here (${context.keychain.cause}). Use --key-file with a key of your own, or "lifeline connect VM --ephemeral".`);
  }
}

type KeyOptions = { keyData?: string; keyFile?: string; generate?: boolean; expiration?: string; expiresIn?: number } & SharingOptions;
type SharingOptions = { allowObservers?: boolean; maxObservers?: number; recording?: 'required' | 'off' | 'default' };

/** The sharing settings given on the command line, as the API's body fields. */
function sharingOf(options: SharingOptions): SharingOptions {
  return {
    ...(options.allowObservers !== undefined && { allowObservers: options.allowObservers }),
    ...(options.maxObservers !== undefined && { maxObservers: options.maxObservers }),
    ...(options.recording !== undefined && { recording: options.recording }),
  };
}

function parseObservers(value: string): number {
  const count = Number(value);
  if (!/^\d+$/.test(value) || count < 1 || count > 64) throw new InvalidArgumentError('a whole number from 1 to 64');
  return count;
}

function addKeyOptions(command: Command): Command {
  return command
    .option('--key-data <key>', 'the OpenSSH public key ("ssh-ed25519 AAAA… comment")')
    .option('--key-file <file>', 'read the public key from a file (e.g. ~/.ssh/id_ed25519.pub)')
    .option('--generate', "make a new Ed25519 key; its private half goes to the OS keychain (the desktop app's account)")
    .addOption(new Option('--expiration <time>', 'RFC 3339 time with a time zone').argParser(parseRfc3339))
    .addOption(new Option('--expires-in <duration>', 'from now: 90m, 2h, 7d').argParser(parseDurationMs))
    .addOption(new Option('--allow-observers <bool>', 'let key holders watch read-only ("lifeline connect VM --observe"); default false').argParser(parseBoolean))
    .addOption(new Option('--max-observers <n>', 'observers at once (1-64; default 4)').argParser(parseObservers))
    .addOption(new Option('--recording <mode>', 'record its sessions: required, off, or default (as the relay is set)').choices(['required', 'off', 'default']));
}

export function registerRelayCommands(program: Command): void {
  const relay = program.command('relay').description('the relays this computer knows (shared with the desktop app)');
  relay
    .command('add <name>')
    .description('add a relay: checks the token, pins its SSH host key and TLS certificate')
    .requiredOption('--url <url>', 'its API URL, e.g. https://relay.example:8440')
    .option('--token-stdin', 'read the API token from stdin')
    .option('--tls-fingerprint <sha256>', "pin this TLS certificate (as \"lifeline-relay info\" prints it)")
    .action(async (name: string, options: { url: string; tokenStdin?: boolean; tlsFingerprint?: string }, command: Command) => {
      const context = contextOf(command);
      const token = options.tokenStdin ? await readStdin() : context.flags.tokenFile ? readTokenFile(context.flags.tokenFile) : process.env.LIFELINE_TOKEN?.trim();
      if (!token) throw usageError('Give the API token with --token-file FILE or --token-stdin (or LIFELINE_TOKEN).');
      const clash = context.registry.records().find((r) => r.name === name);
      const pin = await certificatePin(context, options.url, options.tlsFingerprint);
      const registered = await context.registry.register({ name, url: options.url, token, embedded: false, ...(pin && { tlsFingerprint: pin }) });
      // register() checked the token; without a keychain to keep it, the view's own re-check has none to use.
      const view: RelayView = registered.status === 'unauthorized' ? { ...registered, status: 'ok', error: undefined } : registered;
      if (clash && clash.id !== view.id) say(`Note: another relay is also named "${name}" (${clash.url}); use --relay ${view.id} for this one.`);
      if (!(await context.keychain.available())) say(`No OS keychain (${context.keychain.cause}): the token was not kept. Pass --token-file or LIFELINE_TOKEN to each command.`);
      printOne(context, view, [['name', view.name], ['url', view.url], ['id', view.id], ['status', view.status], ['hostKey', view.hostKeyFingerprint], ['tls', view.tlsFingerprint ?? (view.url.startsWith('https') ? 'trusted by the system' : 'off')]]);
    });
  relay
    .command('list')
    .description('the relays, with whether each answers to its token')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const views = await context.registry.list();
      print(context, views, views, relayColumns, 'No relays: add one with "lifeline relay add NAME --url URL --token-file FILE".');
    });
  relay
    .command('remove <name>')
    .description('forget a relay, its API token and its console keys')
    .action(async (name: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const record = context.registry.records().find((r) => r.name === name || r.id === name);
      if (!record) throw new CliError(`No relay named "${name}": see "lifeline relay list".`);
      await confirm(context, `Forget the relay "${record.name}" (${record.url}) and its console keys in the keychain?`);
      await context.keys.deleteRelay(record.id);
      await context.registry.remove(record.id);
      say(`Removed the relay "${record.name}".`);
    });

  const consoles = program.command('console').description("a VM's Console resource (az networkcloud virtualmachine console)");
  addKeyOptions(consoles.command('create <vm>').description('create the console of a VM'))
    .addOption(new Option('--enabled <bool>', 'true or false').argParser(parseBoolean).default(true))
    .action(async (vm: string, options: KeyOptions & { enabled: boolean }, command: Command) => {
      const context = contextOf(command);
      const key = keyChoice(options, true);
      if (key.generate) await requireKeychain(context, '--generate');
      const { record, api } = await context.relay(vm);
      await api.virtualMachine(vm);
      const existing = await api.console(vm);
      if (existing) throw new CliError(`${vm} already has a console (key ${existing.keyFingerprint}): change it with "lifeline console update ${vm} …", or delete it first.`);
      const expiration = expirationOf(options);
      const put = (keyData: string): Promise<ConsoleResource> => api.putConsole(vm, { enabled: options.enabled, sshPublicKey: { keyData }, ...(expiration && { expiration }), ...sharingOf(options) });
      const created = key.generate ? (await context.keys.rotate(record.id, vm, (fresh) => put(fresh.publicKey))).result : await put(key.keyData!);
      printOne(context, created, consoleFields(vm, created, key.generate));
    });
  consoles
    .command('show <vm>')
    .description("a VM's console")
    .action(async (vm: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const { record, api } = await context.relay(vm);
      await api.virtualMachine(vm);
      const found = await api.console(vm);
      if (!found) throw new CliError(`ConsoleNotFound: ${vm} has no console: create one with "lifeline console create ${vm} --generate".`);
      const own = await context.keys.own(record.id, vm);
      printOne(context, found, consoleFields(vm, found, own?.fingerprint === found.keyFingerprint));
    });
  addKeyOptions(consoles.command('update <vm>').description('enable, disable, renew or re-key a console, or change who may watch it'))
    .addOption(new Option('--enabled <bool>', 'true or false').argParser(parseBoolean))
    .action(async (vm: string, options: KeyOptions & { enabled?: boolean }, command: Command) => {
      const context = contextOf(command);
      const key = keyChoice(options, false);
      const expiration = expirationOf(options);
      const sharing = sharingOf(options);
      if (options.enabled === undefined && !expiration && !key.keyData && !key.generate && Object.keys(sharing).length === 0) {
        throw usageError('Nothing to change: give --enabled, --expiration/--expires-in, a key (--generate, --key-file, --key-data), --allow-observers, --max-observers or --recording.');
      }
      if (key.generate) await requireKeychain(context, '--generate');
      const { record, api } = await context.relay(vm);
      const patch = (keyData?: string): Promise<ConsoleResource> =>
        api.patchConsole(vm, { ...(options.enabled !== undefined && { enabled: options.enabled }), ...(expiration && { expiration }), ...(keyData && { sshPublicKey: { keyData } }), ...sharing });
      const updated = key.generate ? (await context.keys.rotate(record.id, vm, (fresh) => patch(fresh.publicKey))).result : await patch(key.keyData);
      const own = await context.keys.own(record.id, vm);
      printOne(context, updated, consoleFields(vm, updated, own?.fingerprint === updated.keyFingerprint));
    });
  consoles
    .command('delete <vm>')
    .description('delete a console: its sessions close, its access id is gone')
    .action(async (vm: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const { record, api } = await context.relay(vm);
      await api.virtualMachine(vm);
      await confirm(context, `Delete the console of ${vm}? Its sessions close and its access id is gone for good.`);
      await api.deleteConsole(vm);
      await context.keys.delete(record.id, vm);
      say(`Deleted the console of ${vm}.`);
    });
  consoles
    .command('list')
    .description('the consoles of every VM of the relay')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const { record, api } = await context.relay();
      const vms = (await api.virtualMachines()).filter((v) => v.console);
      const rows = await Promise.all(vms.map(async (v) => ({ vm: v.name, console: v.console!, own: (await context.keys.own(record.id, v.name))?.fingerprint === v.console!.keyFingerprint })));
      print(context, rows.map((r) => ({ ...r.console, keyInKeychain: r.own })), rows, [
        { heading: 'vm', value: (r) => r.vm },
        { heading: 'status', value: (r) => r.console.detailedStatus },
        { heading: 'expires', value: (r) => timeLeft(r.console.expiration) },
        { heading: 'key', value: (r) => r.console.keyFingerprint },
        { heading: 'in keychain', value: (r) => (r.own ? 'yes' : 'no') },
        { heading: 'access id', value: (r) => r.console.virtualMachineAccessId },
      ], 'No consoles: create one with "lifeline console create VM --generate".');
    });
}

