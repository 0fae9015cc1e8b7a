import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { docCommands, documentedKeys, fencedBlocks, jsonKeys, ReaderShell, type DocCommand } from '../helpers/doc-commands.js';
import { RELAY_BIN, REPO_ROOT } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * The docs run as written (issue 24, part 9): every command of every `sh` block in README,
 * api.md, vnc.md, relay.md and lab.md is run, in order, by a reader's shell (one bash per
 * document, keeping its variables and jobs), against `npm run demo` and then a relay of the
 * reader's own — all inside a network namespace of the test's own, so the documented addresses
 * and ports (127.0.0.1:8440, 2222, 6080, 5901, 127.0.0.77) are used as printed, not rewritten.
 *
 * What the runner does that a reader does:
 * - sets what the docs tell the reader to set: a home of its own with a key in ~/.ssh/id_ed25519, the current
 *   directory where `npm run demo` made ./lifeline-lab, and the access id where the docs print a
 *   placeholder (`3f0c…`, `<virtualMachineAccessId>`; `<endpoint-ip>` is 127.0.0.1);
 * - answers an interactive `ssh` (a terminal through `script`): "yes" to a new host key, Enter
 *   until the VM's prompt, `uname -a`, then `~.`;
 * - runs a `serve` line (foreground, "a terminal of its own") beside the shell, waits for
 *   "relay ready", and presses Ctrl-C at the end of the document: it must exit 0;
 * - waits a moment after a line ending in `&`, as a reader typing the next line does;
 * - runs the lines marked "when you are done" after the document's last block.
 * Checks: each command exits 0; a command whose reply the docs print (a json block right after)
 * answers JSON with every key the example shows and no error; a `url` in a reply opens (200).
 * Lines not run are listed below with why; a listed line that is no longer in the docs fails.
 */
const DOCS = ['README.md', 'docs/api.md', 'docs/vnc.md', 'docs/relay.md', 'docs/lab.md'];
const NOT_RUN: ReadonlyMap<string, string> = new Map([
  ['bash scripts/setup.sh && npm start', 'setup.sh is the first step of .ci/run, which runs this test; npm start (browser mode) is run by test/e2e/no-orphans.test.ts'],
  ['npm test', 'the command that runs this test'],
  ['gvncviewer localhost:1', 'an interactive viewer window; gvnccapture on the next line makes the same connection and saves the screen'],
]);

const tmp = tempDir('docs');
const home = join(tmp.path, 'home');
// OpenSSH finds ~/.ssh through the password database, not $HOME: the mount namespace puts the
// reader's ~/.ssh over the real one, so the machine's keys and known_hosts are neither read nor written.
const realSsh = join(userInfo().homedir, '.ssh');
const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache'); // the lab image, built once per machine
const env: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: home,
  XDG_CACHE_HOME: cacheHome,
  LANG: 'C.UTF-8',
  TERM: 'xterm',
  NPM_CONFIG_UPDATE_NOTIFIER: 'false',
  LIFELINE_LAB_DIR: join(tmp.path, 'lifeline-lab'),
};
let holder: ChildProcess | undefined;
let demo: ChildProcess | undefined;
const shells: ReaderShell[] = [];
const servers: ChildProcess[] = [];

/** argv prefix that runs a program in the test's network namespace. */
const inNamespace = (): string[] => ['nsenter', `--net=/proc/${holder!.pid}/ns/net`, `--mount=/proc/${holder!.pid}/ns/mnt`, `--wd=${tmp.path}`, '--'];

function killGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): void {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Gone already.
  }
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Starts `argv` in the namespace, detached (its own process group), collecting its output. */
function startBeside(argv: string[], cwd = tmp.path): { child: ChildProcess; output: () => string } {
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

async function accessId(vm: string): Promise<string> {
  const token = readFileSync(join(tmp.path, 'lifeline-lab', 'data', 'admin.token'), 'utf8').trim();
  const result = spawnSync(inNamespace()[0]!, [...inNamespace().slice(1), 'curl', '-s', '-H', `Authorization: Bearer ${token}`, `http://127.0.0.1:8440/v1/virtualMachines/${vm}/console`], { encoding: 'utf8', env });
  const id = JSON.parse(result.stdout).virtualMachineAccessId as string | undefined;
  assert.ok(id, `${vm} has a console: ${result.stdout}`);
  return id;
}

/** An interactive `ssh` line, in a terminal (`script`), answered as a reader would; returns what the terminal showed. */
async function interactiveSsh(command: string): Promise<string> {
  const child = spawn(inNamespace()[0]!, [...inNamespace().slice(1), 'script', '-qfec', command, '/dev/null'], { cwd: tmp.path, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let screen = '';
  child.stdout!.on('data', (chunk: Buffer) => (screen += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (screen += chunk.toString()));
  try {
    const prompt = await waitUntil(() => {
      if (/\(yes\/no(\/\[fingerprint\])?\)\? $/.test(screen)) child.stdin!.write('yes\r');
      else if (/lab-\d+:[^\n]*# /.test(screen.slice(-200))) return true;
      else if (/Permission denied|Connection refused|Host key verification failed|closed by remote host/.test(screen)) throw new Error(`ssh failed: ${screen}`);
      else child.stdin!.write('\r');
      return undefined;
    }, 60_000, `the VM's prompt through: ${command}`).catch((error) => {
      throw new Error(`${(error as Error).message}\nterminal: ${screen}`);
    });
    assert.ok(prompt);
    child.stdin!.write('uname -a\r');
    await waitUntil(() => /Linux lab-\d+ /.test(screen), 20_000, 'uname -a on the VM');
    child.stdin!.write('\r~.');
    await exited(child, 10_000);
    return screen;
  } finally {
    killGroup(child, 'SIGKILL');
  }
}

/** Runs a document's commands, in order, in a reader's shell of its own. */
async function runDocument(file: string): Promise<void> {
  const markdown = readFileSync(join(REPO_ROOT, file), 'utf8');
  const commands = docCommands(fencedBlocks(file, markdown), markdown);
  assert.ok(commands.length > 0, `${file} has commands`);
  const shell = new ReaderShell(inNamespace(), { cwd: tmp.path, env });
  shells.push(shell);
  const mine: Array<{ child: ChildProcess; output: () => string }> = [];
  const later: DocCommand[] = [];
  const where = (command: DocCommand): string => `${file}:${command.line}: ${command.text}`;
  const run = async (command: DocCommand): Promise<void> => {
    const skip = [...NOT_RUN.keys()].find((key) => command.text.startsWith(key));
    if (skip) return;
    let text = command.text;
    if (/3f0c…|<virtualMachineAccessId>/.test(text)) text = text.replace(/3f0c…|<virtualMachineAccessId>/g, await accessId('lab-1')).replace(/<endpoint-ip>/g, '127.0.0.1');
    assert.doesNotMatch(text, /…|<[a-z-]+>/i, `${where(command)}: a placeholder the runner does not know`);
    if (/^(npx )?lifeline-relay serve /.test(text)) {
      const server = startBeside([...inNamespace(), 'bash', '-c', text]);
      mine.push(server);
      servers.push(server.child);
      await waitUntil(() => {
        if (server.child.exitCode !== null) throw new Error(`${where(command)} exited ${server.child.exitCode}: ${server.output()}`);
        return server.output().includes('"relay ready"');
      }, 60_000, `${where(command)}: relay ready`);
      return;
    }
    if (/^ssh /.test(text) && !/ -N /.test(text)) {
      const screen = await interactiveSsh(text);
      assert.match(screen, /Linux lab-1 /, `${where(command)}: a shell on lab-1`);
      return;
    }
    const result = await shell.run(text, 120_000);
    assert.equal(result.status, 0, `${where(command)} exited ${result.status}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
    if (text.endsWith('&')) await new Promise((resolve) => setTimeout(resolve, 2000));
    if (command.reply) {
      let reply: unknown;
      assert.doesNotThrow(() => (reply = JSON.parse(result.stdout)), `${where(command)}: the reply is JSON: ${result.stdout}`);
      const keys = jsonKeys(reply);
      const expected = documentedKeys(command.reply.text);
      if (!expected.includes('error')) assert.ok(!keys.has('error'), `${where(command)} answered an error: ${result.stdout}`);
      const missing = expected.filter((key) => !keys.has(key));
      assert.deepEqual(missing, [], `${where(command)}: keys of the example at ${file}:${command.reply.line} missing from the reply ${result.stdout}`);
      const url = (reply as { url?: string }).url;
      if (url) {
        const page = await shell.run(`curl -s -o /dev/null -w '%{http_code}' '${url}'`);
        assert.equal(page.stdout, '200', `${where(command)}: its url opens`);
      }
    } else if (/^curl /.test(text)) {
      assert.doesNotMatch(result.stdout, /"error":\{/, `${where(command)} answered an error`);
    }
  };
  try {
    for (const command of commands) {
      if (/when you are done/.test(command.text)) later.push(command);
      else await run(command);
    }
    for (const server of mine) {
      killGroup(server.child, 'SIGINT'); // Ctrl-C in its terminal (npx itself then ends by the signal)
      await waitUntil(() => server.output().includes('"relay stopped"'), 20_000, `${file}: the relay stops cleanly on Ctrl-C`);
      assert.doesNotMatch(server.output(), /error while shutting down/);
    }
    for (const command of later) await run(command);
  } finally {
    await shell.close();
    for (const server of mine) killGroup(server.child, 'SIGKILL');
  }
}

describe('the docs run as written', { timeout: 600_000 }, () => {
  after(async () => {
    for (const shell of shells) await shell.close();
    for (const server of servers) killGroup(server, 'SIGKILL');
    killGroup(demo, 'SIGINT');
    if (demo) await exited(demo, 20_000).catch(() => killGroup(demo, 'SIGKILL'));
    // Whatever the demo or a document left running (lab down stops VMs by their pid files).
    if (existsSync(join(tmp.path, 'lifeline-lab'))) spawnSync(process.execPath, [RELAY_BIN, 'lab', 'down', '--dir', join(tmp.path, 'lifeline-lab')], { stdio: 'ignore' });
    killGroup(holder, 'SIGKILL');
    tmp.dispose();
  });

  test('README: npm run demo prints what the README shows, and its ssh line opens lab-1', async () => {
    mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'reader@docs', '-f', join(home, '.ssh', 'id_ed25519')]).status, 0);
    // `npx lifeline-relay` as in a checkout: the package's bin in ./node_modules/.bin.
    mkdirSync(join(tmp.path, 'node_modules', '.bin'), { recursive: true });
    symlinkSync(RELAY_BIN, join(tmp.path, 'node_modules', '.bin', 'lifeline-relay'));
    mkdirSync(realSsh, { recursive: true, mode: 0o700 }); // the mount point (what ssh makes on first use anyway)
    const setup = 'ip link set lo up && mount --bind "$1" "$2" && touch "$3" && exec sleep infinity';
    holder = spawn('unshare', ['--net', '--mount', '--propagation', 'private', '--', 'bash', '-c', setup, 'namespace', join(home, '.ssh'), realSsh, join(tmp.path, 'namespace-ready')], { stdio: 'ignore', detached: true });
    await waitUntil(() => existsSync(join(tmp.path, 'namespace-ready')), 10_000, 'the test network and mount namespace');

    // `npm run demo` is `npm run build && node scripts/demo.mjs`; the build is done before the tests.
    const started = startBeside([...inNamespace(), process.execPath, join(REPO_ROOT, 'scripts', 'demo.mjs')]);
    demo = started.child;
    await waitUntil(() => {
      if (demo!.exitCode !== null) throw new Error(`npm run demo exited ${demo!.exitCode}: ${started.output()}`);
      return started.output().includes('Press Ctrl-C');
    }, 120_000, 'npm run demo to print its ssh lines');
    const output = started.output();
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const shown = fencedBlocks('README.md', readme).find((block) => block.info === '' && block.text.includes('ssh -i'));
    assert.ok(shown, 'README shows what npm run demo prints');
    const [heading, line] = shown.text.split('\n');
    assert.ok(output.includes(heading!), `npm run demo prints "${heading}":\n${output}`);
    const pattern = new RegExp(line!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('/path/to/lifeline', tmp.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).replace('3f0c…', '[0-9a-f-]{36}'));
    const printed = output.split('\n').find((l) => pattern.test(l));
    assert.ok(printed, `npm run demo prints a line like "${line}":\n${output}`);
    // "Paste that line: you are on the VM's serial console (uname -a says Linux)."
    await interactiveSsh(printed.replace(/^\s*lab-1:\s*/, ''));
    await runDocument('README.md');
  });

  test('api.md against the demo relay', async () => {
    assert.ok(holder && demo, 'the demo from the README test runs');
    await runDocument('docs/api.md');
  });

  test('vnc.md: the SSH forward with gvnccapture, and a token URL', async () => {
    assert.ok(holder && demo, 'the demo from the README test runs');
    await runDocument('docs/vnc.md');
    const png = join(tmp.path, 'screen.png');
    assert.ok(existsSync(png) && statSync(png).size > 1000, 'gvnccapture saved the screen');
    assert.deepEqual([...readFileSync(png).subarray(1, 4)], [...Buffer.from('PNG')]);
  });

  test('relay.md and lab.md: a relay of the reader\'s own on the lab, after the demo stopped', async () => {
    assert.ok(holder && demo, 'the demo from the README test runs');
    killGroup(demo, 'SIGINT'); // Ctrl-C in the npm run demo terminal stops the relay and the VMs
    assert.equal(await exited(demo, 30_000), 0, 'npm run demo stops cleanly on Ctrl-C');
    assert.ok(!existsSync(join(tmp.path, 'lifeline-lab', 'lab-1', 'qemu.pid')), 'no lab VM is left running');
    await runDocument('docs/relay.md');
    await runDocument('docs/lab.md');
    assert.ok(!existsSync(join(tmp.path, 'lifeline-lab', 'lab-1', 'qemu.pid')), 'lab down stopped the VMs');
  });

  test('every line the runner skips is still in the docs, with its reason', () => {
    const all = DOCS.flatMap((file) => {
      const markdown = readFileSync(join(REPO_ROOT, file), 'utf8');
      return docCommands(fencedBlocks(file, markdown), markdown).map((command) => command.text);
    });
    assert.deepEqual([...NOT_RUN.keys()].filter((key) => !all.some((text) => text.startsWith(key))), [], 'a skipped line no longer in the docs: remove it from NOT_RUN');
    assert.ok(all.length >= 30, `${all.length} commands found in ${DOCS.join(', ')}`);
  });
});
