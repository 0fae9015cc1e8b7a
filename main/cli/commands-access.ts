import { spawn } from 'node:child_process';
import { Option, type Command } from 'commander';
import which from 'which';
import { connect } from './connect.js';
import { usageError } from './errors.js';
import { contextOf, parseCount, parseDurationMs, parsePort, parseRegex, parseSeconds, printOne, say } from './kit.js';
import { parseEscapeChar } from './openssh.js';
import { proxy, renderSshConfig, sshHostEntries } from './ssh-config.js';
import { vnc } from './vnc.js';

/** What a command's action hands back to the entry point: the exit code. */
export type ExitSetter = (code: number) => void;

export function registerAccessCommands(program: Command, exit: ExitSetter): void {
  program
    .command('connect <vm>')
    .description("the VM's serial console, through OpenSSH (~. ends it, ~B sends a break, ~? lists the escapes)")
    .option('--endpoint <name>', 'the private endpoint to connect through (default: the relay\'s chosen one)')
    .option('-i, --identity <file>', 'your own private key file instead of the key in the keychain')
    .addOption(new Option('-e, --escape-char <char>', "OpenSSH's escape character: one character, ^X, or none").argParser(parseEscapeChar))
    .addOption(new Option('--replay <lines>', 'how many lines of recent output to show first (default: all the relay kept)').argParser(parseCount))
    .option('--no-tty', 'no terminal: stdin goes to the console, its output to stdout (for scripts)')
    .addOption(new Option('--expect <regex>', 'with --no-tty: exit 0 as soon as the output matches').argParser(parseRegex))
    .addOption(new Option('--timeout <seconds>', 'with --expect: give up (exit 3) after this long (default 30)').argParser(parseSeconds))
    .option('--observe', "watch read-only beside whoever has the console (it must allow observers); Enter ~~r asks for control")
    .option('--ephemeral', 'a fresh key for this connection only, put on the console before and taken off after')
    .addOption(new Option('--ephemeral-ttl <duration>', 'with --ephemeral on a VM without a console: how long the console it creates lives').argParser(parseDurationMs).default(3_600_000, '1h'))
    .action(async (vm: string, options: { endpoint?: string; identity?: string; escapeChar?: string; replay?: number; tty: boolean; expect?: RegExp; timeout?: number; ephemeral?: boolean; ephemeralTtl: number; observe?: boolean }, command: Command) => {
      if (options.expect && options.tty) throw usageError('--expect needs --no-tty (a script reads the output, not a terminal).');
      if (options.ephemeral && options.identity) throw usageError('Give --ephemeral or --identity, not both.');
      if (options.ephemeral && options.observe) throw usageError("--ephemeral changes the console's key, which ends the sessions on it: an observer connects with the console's own key.");
      const interactive = options.tty && process.stdin.isTTY === true;
      if (options.tty && !interactive) say('lifeline: stdin is not a terminal: running as with --no-tty.');
      exit(
        await connect(contextOf(command), vm, {
          ...(options.endpoint && { endpoint: options.endpoint }),
          ...(options.identity && { identity: options.identity }),
          ...(options.escapeChar !== undefined && { escapeChar: options.escapeChar }),
          ...(options.replay !== undefined && { replayLines: options.replay }),
          ...(options.observe && { observe: true }),
          tty: interactive,
          ...(options.expect && { expect: options.expect }),
          ...(options.timeout !== undefined && { timeoutMs: options.timeout }),
          ephemeral: options.ephemeral === true,
          ephemeralTtlMs: options.ephemeralTtl,
        }),
      );
    });

  program
    .command('vnc <vm>')
    .description("the VM's screen on a local port, with a VNC viewer if one is found")
    .option('--endpoint <name>', 'the private endpoint to connect through')
    .option('-i, --identity <file>', 'your own private key file instead of the key in the keychain')
    .option('--proxy-only', 'start no viewer: print {"port":N} and serve viewers until Ctrl-C')
    .addOption(new Option('--port <port>', 'the local port (0: any free one; default: the first free of 5901-5999)').argParser(parsePort))
    .option('--viewer <command>', 'the viewer to run, with {host} {port} {display} filled in (else 127.0.0.1::PORT is appended)')
    .option('--browser', "print (and open, where there is a desktop) the noVNC page's one-time URL instead")
    .action(async (vm: string, options: { endpoint?: string; identity?: string; proxyOnly?: boolean; port?: number; viewer?: string; browser?: boolean }, command: Command) => {
      const context = contextOf(command);
      if (options.browser) {
        if (options.proxyOnly || options.viewer) throw usageError('--browser opens the relay\'s noVNC page: it takes no --proxy-only or --viewer.');
        const { api } = await context.relay(vm);
        const token = await api.vncToken(vm, options.endpoint);
        printOne(context, token, [['url', token.url], ['expiresAt', `${token.expiresAt} (single use: open it within 60 s)`]]);
        const opener = process.platform === 'darwin' ? 'open' : (process.env.DISPLAY || process.env.WAYLAND_DISPLAY) && which.sync('xdg-open', { nothrow: true });
        if (opener) spawn(opener, [token.url], { stdio: 'ignore', detached: true }).on('error', () => undefined).unref();
        return;
      }
      exit(await vnc(context, vm, { proxyOnly: options.proxyOnly === true, ...(options.endpoint && { endpoint: options.endpoint }), ...(options.identity && { identity: options.identity }), ...(options.port !== undefined && { port: options.port }), ...(options.viewer !== undefined && { viewer: options.viewer }) }));
    });

  program
    .command('config')
    .description('configuration for other tools')
    .command('ssh')
    .description('OpenSSH Host blocks for the consoles you hold a key for, so that "ssh VM" works')
    .option('--prefix <text>', 'put this before every host name (e.g. "ll-")', '')
    .action(async (options: { prefix: string }, command: Command) => {
      const context = contextOf(command);
      const { entries, skipped } = await sshHostEntries(context, options.prefix);
      for (const why of skipped) say(`lifeline: skipped ${why}`);
      if (context.flags.output !== 'table') printOne(context, entries, []);
      else process.stdout.write(renderSshConfig(context, entries));
      if (entries.length === 0) say('lifeline: no console holds a key from your keychain: create one with "lifeline console create VM --generate".');
    });

  program
    .command('proxy <vm>')
    .description('the stdio bridge "config ssh" puts in ProxyCommand (with the key on its agent socket)')
    .option('--user <accessId>', "the user OpenSSH logs in as (%r): checked against the console's access id")
    .action(async (vm: string, options: { user?: string }, command: Command) => {
      exit(await proxy(contextOf(command), vm, options.user));
    });
}

