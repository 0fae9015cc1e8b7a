import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LIFELINE_BIN } from '../helpers/lifeline-cli.js';
import type { KeyPair } from '../helpers/openssh.js';
import type { RelayProcess } from '../helpers/relay-process.js';
import { opensshSetup } from './clients.js';
import { fmt, median, ratio, spread } from './stats.js';

/** What the CLI section needs of the benchmark run. */
export interface CliBenchContext {
  runs: number;
  dir: string;
  key: KeyPair;
  relay: RelayProcess;
  /** The bench VM's name and its console's access id. */
  vm: string;
  accessId: string;
  report: string[];
  targets: Array<{ target: string; measured: string; met: boolean }>;
}

/**
 * ms from starting `lifeline ARGS` to the first console byte (the echo of a byte written at once),
 * then the command is stopped with SIGTERM and waited for (an --ephemeral run puts the old key back then).
 */
function cliSetup(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [LIFELINE_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    let ms: number | undefined;
    child.stdin.on('error', () => undefined);
    child.stdin.write('x');
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.once('data', () => {
      ms = Number(process.hrtime.bigint() - started) / 1e6;
      child.kill('SIGTERM');
    });
    child.once('exit', (code) => (ms === undefined ? reject(new Error(`lifeline exited ${code} before a console byte: ${err}`)) : resolve(ms)));
  });
}

/**
 * Section 9: what the CLI's conveniences cost at connect time. The peer is what a user types without
 * it: `ssh -i KEY -p PORT <accessId>@<ip>`, with the access id already copied out of an API reply.
 * `lifeline connect` finds the relay, VM, console, endpoint and pinned host key through the API
 * first, then runs the same OpenSSH; --ephemeral also puts a key on the console and takes it off.
 */
export async function cliSection(context: CliBenchContext): Promise<void> {
  const { relay, key, report } = context;
  const home = join(context.dir, 'cli-home');
  mkdirSync(home, { recursive: true });
  // No keychain (as on CI): the token comes from a file for each command.
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_DATA_HOME: join(home, 'data'), XDG_RUNTIME_DIR: '', LIFELINE_RELAY: '', LIFELINE_TOKEN: '' };
  for (const name of ['DBUS_SESSION_BUS_ADDRESS', 'DISPLAY', 'LIFELINE_DATA_DIR']) delete env[name];
  const tokenFile = join(context.dir, 'cli-token');
  writeFileSync(tokenFile, relay.token, { mode: 0o600 });
  const added = await new Promise<number | null>((resolve) => spawn(process.execPath, [LIFELINE_BIN, 'relay', 'add', 'bench', '--url', relay.apiUrl, '--token-file', tokenFile], { env, stdio: 'ignore' }).once('exit', resolve));
  if (added !== 0) throw new Error(`lifeline relay add exited ${added}`);
  const byHand: number[] = [];
  const withKey: number[] = [];
  const ephemeral: number[] = [];
  const common = ['--token-file', tokenFile, '--no-tty', '--replay', '0'];
  for (let i = 0; i < context.runs; i++) {
    byHand.push(await opensshSetup(relay.sshPort, context.accessId, key.privateKeyPath));
    await sleep(100);
    withKey.push(await cliSetup(['connect', context.vm, '-i', key.privateKeyPath, ...common], env));
    await sleep(100);
    ephemeral.push(await cliSetup(['connect', context.vm, '--ephemeral', ...common], env));
    await sleep(100);
  }
  report.push(
    `${context.runs} runs each, alternating; ms from starting the command to the first console byte. The relay on loopback; no OS keychain (the token from a file).\n`,
    '| command | median | min–max | vs `ssh` by hand |',
    '|---|---|---|---|',
    `| \`ssh -i KEY -p PORT <accessId>@127.0.0.1\` (access id known) | ${fmt(median(byHand))} | ${spread(byHand)} | 1.00× |`,
    `| \`lifeline connect VM -i KEY\` | ${fmt(median(withKey))} | ${spread(withKey)} | ${ratio(median(withKey), median(byHand))} |`,
    `| \`lifeline connect VM --ephemeral\` | ${fmt(median(ephemeral))} | ${spread(ephemeral)} | ${ratio(median(ephemeral), median(byHand))} |`,
    '',
    'The difference is the CLI itself: Node and the CLI\'s modules take about 150 ms to load (`lifeline --version`: 0.15 s against 0.05 s for an empty Node), then four API calls asked at once (VM, console, endpoints, relay info for the host key pin) before OpenSSH runs; --ephemeral adds the key\'s PATCH (and the PATCH that puts the old key back, after the session, not counted).',
  );
  context.targets.push({ target: 'lifeline connect within 1 s of ssh by hand (with the lookups it saves)', measured: `${fmt(median(withKey))} ms vs ${fmt(median(byHand))} ms`, met: median(withKey) - median(byHand) <= 1000 });
}
