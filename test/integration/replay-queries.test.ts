import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCleanups } from '../helpers/cleanup.js';
import { startLabRelay, type LabRelay } from '../helpers/lab-relay.js';
import { OPENSSH_BATCH_OPTIONS } from '../helpers/openssh.js';
import { waitUntil as waitFor } from '../helpers/wait.js';

/*
 * The replay on attach must not carry the guest's old terminal queries: the lab VM's BusyBox
 * sends ESC[6n after every prompt, and tmux (like xterm.js) answers one with ESC[r;cR typed
 * into the VM. Here tmux runs OpenSSH as a user would; each attach displaces the one before
 * and gets the replay with the old prompts in it.
 */
let lab: LabRelay | undefined;
let tmuxPid: number | undefined;
let socket = '';
after(() => runCleanups([() => tmuxPid !== undefined && killQuietly(tmuxPid), () => lab?.dispose()]));

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });

async function serialSession(): Promise<{ id: string; bytesIn: number } | undefined> {
  const sessions = await lab!.relay.api('GET', '/v1/sessions');
  return (sessions.body.value as Array<{ id: string; kind: string; bytesIn: number }>).find((session) => session.kind === 'serial');
}

/** Opens lab-1's serial console with OpenSSH in a new tmux window; resolves with its session once the relay has it. */
async function attach(window: string, previous?: string): Promise<{ id: string; bytesIn: number }> {
  const ssh = ['ssh', '-tt', ...OPENSSH_BATCH_OPTIONS, '-i', lab!.key.privateKeyPath, '-p', String(lab!.relay.sshPort), `${lab!.user}@127.0.0.1`];
  const command = ssh.map((word) => `'${word}'`).join(' ');
  if (tmuxPid === undefined) {
    tmux('new-session', '-d', '-s', 'replay', '-n', window, '-x', '100', '-y', '30', command);
    tmuxPid = Number(tmux('display-message', '-p', '-t', 'replay', '#{pid}').trim());
  } else {
    tmux('new-window', '-t', 'replay', '-n', window, command);
  }
  let found: { id: string; bytesIn: number } | undefined;
  await waitFor(async () => {
    found = await serialSession();
    return found !== undefined && found.id !== previous;
  }, 15_000, `a serial session for window ${window}`);
  return found!;
}

const pane = (window: string): string => tmux('capture-pane', '-p', '-t', `replay:${window}`);

before(async () => {
  lab = await startLabRelay('replay-queries', { serial: { replayBytes: 65536 } });
  socket = join(lab.dir, 'tmux.sock');
});

test('a second attach replays the prompt but sends the VM nothing before a keystroke (tmux answers ESC[6n)', async () => {
  const first = await attach('one');
  // A prompt and its ESC[6n, live: tmux answers it (that answer is the live guest's business).
  await waitFor(async () => {
    tmux('send-keys', '-t', 'replay:one', 'Enter');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return /lab-1:[^\n]*#/.test(pane('one'));
  }, 120_000, 'the lab VM\'s shell prompt');
  tmux('send-keys', '-t', 'replay:one', 'echo marker-$((6*7))', 'Enter');
  await waitFor(() => pane('one').includes('marker-42'), 15_000, 'the echo');
  const live = await serialSession();
  assert.ok(live!.bytesIn > 0, 'the first session typed');

  // The second attach displaces the first and gets the replay, old prompts and their queries included.
  const second = await attach('two', first.id);
  await waitFor(() => pane('two').includes('marker-42'), 10_000, 'the replay in the second window');
  await new Promise((resolve) => setTimeout(resolve, 1500)); // room for a terminal's answer to arrive
  assert.equal((await serialSession())!.bytesIn, 0, `bytes reached the VM before any keystroke; the pane shows:\n${pane('two')}`);

  // With nothing typed, OpenSSH is at the start of a line: ~B is its escape (a break request, no data)…
  tmux('send-keys', '-t', 'replay:two', '~B');
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal((await serialSession())!.bytesIn, 0, '~B was typed into the VM instead of being OpenSSH\'s escape');
  // …and so is ~. (an escape leaves OpenSSH at the start of the line): the client leaves and the relay ends the session.
  tmux('send-keys', '-t', 'replay:two', '~.');
  await waitFor(async () => (await serialSession())?.id !== second.id, 10_000, 'the session to end after ~.');
});
