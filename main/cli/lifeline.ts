/**
 * `lifeline`: the command-line client (docs/cli.md). Relays and keys are the desktop app's (one
 * relay list, one keychain); consoles are reached by running OpenSSH. Exit codes: errors.ts.
 */
import { createRequire } from 'node:module';
import type TabAdapter from '@bomb.sh/tab/commander';
import { Command, CommanderError, Option } from 'commander';
import { registerAccessCommands } from './commands-access.js';
import { registerOperationCommands } from './commands-ops.js';
import { registerRelayCommands } from './commands-relays.js';
import { describeError, EXIT } from './errors.js';
import { OUTPUT_FORMATS } from './output.js';

// A closed pipe (lifeline vm list | head) is not an error of ours.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

/** Commander's own errors that mean the command line was wrong: exit 2. */
const USAGE_ERRORS = new Set(['commander.unknownOption', 'commander.unknownCommand', 'commander.missingArgument', 'commander.optionMissingArgument', 'commander.missingMandatoryOptionValue', 'commander.invalidArgument', 'commander.excessArguments', 'commander.conflictingOption']);

type Tab = typeof TabAdapter;

/** The program; `tab` (loaded only for `completion` and `complete`, it costs startup) adds shell completion. */
export async function buildProgram(setExit: (code: number) => void, tab?: Tab): Promise<Command> {
  const program = new Command('lifeline')
    .description('Out-of-band console access to VMs through Lifeline relays: consoles, serial over OpenSSH, VNC, and the relay\'s resources.')
    .version(version, '-V, --version')
    .option('--relay <name>', 'the relay to use, by name or id (default: the only one, or the one with the VM; env LIFELINE_RELAY)')
    .option('--token-file <file>', 'read the API token from this file for this command (env LIFELINE_TOKEN); nothing is stored')
    .addOption(new Option('-o, --output <format>', 'how data is printed').choices(OUTPUT_FORMATS).default('table'))
    .option('-y, --yes', 'answer yes to confirmations (power actions, deletions)')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .showSuggestionAfterError()
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true })
    .addHelpText('after', '\nExit codes: 0 ok, 1 error, 2 usage, 3 --expect timed out, 10-20 the relay closed the session (docs/cli.md), 255 SSH failed.');
  registerRelayCommands(program);
  registerAccessCommands(program, setExit);
  registerOperationCommands(program);
  if (tab) {
    const { completionCandidates } = await import('./completion.js');
    completionCandidates(tab(program, { completionCommandName: 'completion' }));
  } else {
    // What `lifeline completion` is, for --help; running it loads the real one above.
    program.command('completion <shell>').description('print the shell completion script: bash, zsh or fish');
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const completing = argv[2] === 'completion' || argv[2] === 'complete';
  const program = await buildProgram((exitCode) => (code = exitCode), completing ? (await import('@bomb.sh/tab/commander')).default : undefined);
  try {
    if (argv[2] === 'complete' && argv[3] === '--') await (await import('./completion.js')).completionCandidates.prefetch(argv.slice(4));
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) return USAGE_ERRORS.has(error.code) ? EXIT.usage : error.exitCode;
    const { text, exitCode } = describeError(error);
    process.stderr.write(`lifeline: ${text}\n`);
    return exitCode;
  }
  return code;
}

const code = await main(process.argv);
// Flushed first: a piped stdout may still be writing.
process.stdout.write('', () => process.exit(code));
