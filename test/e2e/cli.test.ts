import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import keytar from 'keytar';
import { runInSerialTab, vmRow } from '../helpers/app-page.js';
import { launchChromium } from '../helpers/browser.js';
import { startBrowserMode, type BrowserMode } from '../helpers/browser-mode.js';
import { runCleanups } from '../helpers/cleanup.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { filesContaining, LIFELINE_BIN, runCli, spawnCli, Tmux, type CliProcess } from '../helpers/lifeline-cli.js';
import { ephemeralConfig, startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { gvnccapture, pngSize } from '../helpers/vnc-client.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The `lifeline` CLI end to end, as a VM owner types it: a real lab VM and relay, OpenSSH, tmux
 * for a real terminal, gvnccapture, the real Secret Service (the test runner's private D-Bus
 * session), and then the desktop in browser mode on the same relay list and keychain.
 */
describe('lifeline CLI', () => {
  const tmp = tempDir('cli');
  const home = join(tmp.path, 'home');
  const runtime = join(tmp.path, 'run');
  const dataDir = join(home, '.local', 'share', 'lifeline');
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_DATA_HOME: join(home, '.local', 'share'), XDG_RUNTIME_DIR: runtime, LIFELINE_RELAY: '', LIFELINE_TOKEN: '' };
  delete env.LIFELINE_DATA_DIR;
  let lab: Lab;
  let relay: RelayProcess;
  let relayId = '';
  const tmux = new Tmux(join(tmp.path, 'tmux.sock'), env);
  const running: CliProcess[] = [];
  let web: BrowserMode | undefined;
  let closeBrowser: (() => Promise<void>) | undefined;
  const lifeline = (args: string[], input = '', timeoutMs?: number) => runCli(args, env, input, timeoutMs);
  const json = (text: string): any => {
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`not JSON:\n${text}`);
    }
  };
  const shellWords = (words: string[]): string => words.map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(' ');

  before(async () => {
    mkdirSync(home, { recursive: true });
    mkdirSync(runtime, { mode: 0o700 });
    chmodSync(runtime, 0o700);
    lab = startLab(1);
    relay = await startRelay(testConfig(lab.configPath, join(tmp.path, 'relay-data'), { ssh: { port: 0, maxSessions: 30 } }), join(tmp.path, 'relay-data'));
    writeFileSync(join(tmp.path, 'token'), `${relay.token}\n`, { mode: 0o600 });
  });

  after(() =>
    runCleanups([
      () => closeBrowser?.(),
      () => web?.stop(),
      ...running.map((run) => () => run.stop('SIGKILL')),
      () => tmux.stop(),
      async () => {
        for (const credential of await keytar.findCredentials('lifeline')) if (relayId && credential.account.includes(relayId)) await keytar.deletePassword('lifeline', credential.account);
      },
      () => relay?.stop(),
      () => lab?.down(),
      tmp.dispose,
    ]),
  );

  test('relay add checks the token and pins the host key; relay list shows it; the token is in the keychain, not on disk', async () => {
    const added = await lifeline(['relay', 'add', 'lab', '--url', relay.apiUrl, '--token-file', join(tmp.path, 'token'), '-o', 'json']);
    assert.equal(added.code, 0, added.stderr);
    const view = json(added.stdout);
    relayId = view.id;
    assert.equal(view.status, 'ok');
    assert.match(view.hostKeyFingerprint, /^SHA256:/);
    assert.equal(await keytar.getPassword('lifeline', `token:${relayId}`), relay.token);
    const settings = json(readFileSync(join(dataDir, 'settings.json'), 'utf8'));
    assert.deepEqual(settings.relays.map((r: { name: string }) => r.name), ['lab']);
    assert.deepEqual(filesContaining(home, new RegExp(relay.token)), []);
    const listed = await lifeline(['relay', 'list']);
    assert.match(listed.stdout, /^NAME\s+URL\s+STATUS/m);
    assert.match(listed.stdout, new RegExp(`^lab\\s+${relay.apiUrl.replaceAll('.', '\\.')}\\s+ok`, 'm'));
  });

  test('console create --generate: the console holds a new Ed25519 key whose private half is in the keychain under the desktop\'s account', async () => {
    const created = await lifeline(['console', 'create', 'lab-1', '--generate', '--expires-in', '2h', '-o', 'json']);
    assert.equal(created.code, 0, created.stderr);
    const resource = json(created.stdout);
    assert.equal(resource.detailedStatus, 'Ready');
    assert.match(resource.virtualMachineAccessId, /^[0-9a-f-]{36}$/);
    assert.ok(Math.abs(Date.parse(resource.expiration) - Date.now() - 7_200_000) < 60_000, resource.expiration);
    assert.match((await keytar.getPassword('lifeline', `key:${relayId}:lab-1`)) ?? '', /BEGIN OPENSSH PRIVATE KEY/);
    const again = await lifeline(['console', 'create', 'lab-1', '--generate']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already has a console .*console update lab-1/);
  });

  test('connect in a real terminal (tmux) runs uname -a on the guest; ~. ends it and the terminal settings are as before', async () => {
    const script = [
      `stty -a > ${join(tmp.path, 'stty.before')}`,
      `${shellWords([process.execPath, LIFELINE_BIN, 'connect', 'lab-1'])}`,
      `echo "EXIT=$?"`,
      `stty -a > ${join(tmp.path, 'stty.after')}`,
      'sleep 600',
    ].join('; ');
    tmux.open('connect', `bash -c ${shellWords([script])}`);
    tmux.send('connect', 'Enter');
    await tmux.waitFor('connect', /lab-1:[^\n]*# /, 60_000);
    tmux.type('connect', 'uname -a');
    tmux.send('connect', 'Enter');
    await tmux.waitFor('connect', /Linux lab-1 \S+ .*x86_64/);
    // Enter and ~. in one write (tmux's answer to the prompt's ESC[6n must not come between them).
    tmux.send('connect', 'Enter', '~.');
    const pane = await tmux.waitFor('connect', /EXIT=\d+/);
    // ~. is OpenSSH's own disconnect: it exits 255 (no session status from the relay).
    assert.match(pane, /EXIT=255/);
    await waitUntil(() => existsSync(join(tmp.path, 'stty.after')) && readFileSync(join(tmp.path, 'stty.after'), 'utf8').length > 0, 10_000, 'stty after');
    assert.equal(readFileSync(join(tmp.path, 'stty.after'), 'utf8'), readFileSync(join(tmp.path, 'stty.before'), 'utf8'));
  });

  test('connect --no-tty --expect exits 0 on a match and 3 on a timeout; the output is the console\'s', async () => {
    const matched = await lifeline(['connect', 'lab-1', '--no-tty', '--expect', 'lab-1:/#', '--timeout', '30'], '\n');
    assert.equal(matched.code, 0, matched.stderr);
    assert.match(matched.stdout, /lab-1:\/# /);
    const typed = await lifeline(['connect', 'lab-1', '--no-tty', '--replay', '0', '--expect', 'cli-\\d{2}', '--timeout', '30'], 'echo cli-$((6*7))\n');
    assert.equal(typed.code, 0, typed.stderr);
    assert.match(typed.stdout, /cli-42/);
    const missed = await lifeline(['connect', 'lab-1', '--no-tty', '--replay', '0', '--expect', 'never-printed', '--timeout', '2']);
    assert.equal(missed.code, 3);
    assert.match(missed.stderr, /did not match \/never-printed\/ within 2 s/);
  });

  test('a second connect displaces the first, which prints the reason and exits 10; disabling the console ends a live connect with 11', async () => {
    const first = spawnCli(['connect', 'lab-1', '--no-tty', '--replay', '0'], env);
    running.push(first);
    await waitUntil(async () => (await relay.api('GET', '/v1/sessions')).body.value.length === 1, 15_000, 'the first session');
    const second = await lifeline(['connect', 'lab-1', '--no-tty', '--expect', 'lab-1:/#', '--timeout', '30'], '\n');
    assert.equal(second.code, 0, second.stderr);
    assert.equal(await first.exited, 10, first.stderr());
    assert.match(first.stderr(), /the relay closed the session \(displaced\): another session was opened for lab-1 .*To go on, connect again/);

    const live = spawnCli(['connect', 'lab-1', '--no-tty', '--replay', '0'], env);
    running.push(live);
    await waitUntil(async () => (await relay.api('GET', '/v1/sessions')).body.value.length === 1, 15_000, 'the live session');
    const disabled = await lifeline(['console', 'update', 'lab-1', '--enabled', 'false', '-o', 'json']);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.equal(json(disabled.stdout).detailedStatus, 'Disabled');
    assert.equal(await live.exited, 11, live.stderr());
    assert.match(live.stderr(), /\(disabled\).*console update lab-1 --enabled true/);
    const refused = await lifeline(['connect', 'lab-1', '--no-tty', '--expect', 'x']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /disabled: enable it with "lifeline console update lab-1 --enabled true"/);
    assert.equal((await lifeline(['console', 'update', 'lab-1', '--enabled', 'True'])).code, 0);
  });

  test('console update --allow-observers true, then connect --observe watches a live connect without displacing it; sessions list shows the roles', async () => {
    const updated = await lifeline(['console', 'update', 'lab-1', '--allow-observers', 'true', '--max-observers', '2', '-o', 'json']);
    assert.equal(updated.code, 0, updated.stderr);
    assert.equal(json(updated.stdout).allowObservers, true);
    assert.equal(json(updated.stdout).maxObservers, 2);
    assert.equal((await lifeline(['console', 'update', 'lab-1', '--max-observers', '0'])).code, 2, 'a bad count is a usage error');
    const owner = spawnCli(['connect', 'lab-1', '--no-tty', '--replay', '0'], env);
    running.push(owner);
    await waitUntil(async () => (await relay.api('GET', '/v1/sessions')).body.value.length === 1, 15_000, 'the owner\'s session');
    const watching = lifeline(['connect', 'lab-1', '--observe', '--no-tty', '--replay', '0', '--expect', 'watched-\\d{2}', '--timeout', '30']);
    await waitUntil(async () => (await relay.api('GET', '/v1/sessions')).body.value.length === 2, 15_000, 'the observer\'s session');
    const listed = await lifeline(['sessions', 'list', '-o', 'json']);
    assert.deepEqual(json(listed.stdout).map((session: { role: string }) => session.role).sort(), ['controller', 'observer']);
    owner.child.stdin!.write('echo watched-$((7*6))\n');
    const watched = await watching;
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(watched.stdout, /watched-42/);
    assert.match(watched.stderr, /\[lifeline\] observing lab-1: read-only/);
    assert.equal(owner.child.exitCode, null, 'the owner was not displaced');
    await owner.stop();
    assert.equal((await lifeline(['console', 'update', 'lab-1', '--allow-observers', 'false'])).code, 0);
  });

  test('config ssh, then plain ssh lab-1 reaches the console (~B h gives SysRq help), and scp is refused with a clear message', async () => {
    const config = await lifeline(['config', 'ssh']);
    assert.equal(config.code, 0, config.stderr);
    assert.match(config.stdout, /^Host lab-1$/m);
    assert.match(config.stdout, /^ {2}ProxyCommand .* proxy --relay \S+ --user %r lab-1$/m);
    const file = join(tmp.path, 'ssh_config');
    writeFileSync(file, config.stdout);
    assert.doesNotMatch(config.stdout, /PRIVATE KEY/);
    // OpenSSH reads ~/.ssh/config from the passwd home, not $HOME: the test hands it the file.
    tmux.open('ssh', `ssh -F ${file} lab-1; echo "SSH-EXIT=$?"; sleep 600`);
    tmux.send('ssh', 'Enter');
    await tmux.waitFor('ssh', /lab-1:[^\n]*# /, 60_000);
    tmux.type('ssh', 'echo via-$((6*7))');
    tmux.send('ssh', 'Enter');
    await tmux.waitFor('ssh', /via-42/);
    // Enter and ~B in one write: the guest's prompt ends with ESC[6n, and tmux's answer typed between them would
    // make the ~ not the start of a line for OpenSSH (under load it arrived first, and ~Bh went to the guest as text).
    tmux.send('ssh', 'Enter', '~B');
    await new Promise((resolve) => setTimeout(resolve, 300));
    tmux.type('ssh', 'h');
    await tmux.waitFor('ssh', /sysrq: HELP/, 15_000);
    tmux.send('ssh', 'Enter', '~.');
    await tmux.waitFor('ssh', /SSH-EXIT=255/);
    // A key rotated after the blocks were written (as the desktop's one-click rotation does): ssh lab-1 still gets in.
    assert.equal((await lifeline(['console', 'update', 'lab-1', '--generate'])).code, 0);
    const rotated = spawn('ssh', ['-F', file, '-tt', 'lab-1'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let seen = '';
    rotated.stdout!.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    // Typed again until it runs: what is typed before the session is attached is not delivered.
    const retype = setInterval(() => rotated.stdin!.write('echo rotated-$((6*7))\n'), 1000);
    rotated.stdin!.write('echo rotated-$((6*7))\n');
    try {
      await waitUntil(() => seen.includes('rotated-42'), 20_000, 'the command through ssh lab-1 after the key was rotated');
    } finally {
      clearInterval(retype);
      rotated.kill();
    }
    const copy = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn('scp', ['-F', file, '-o', 'BatchMode=yes', file, 'lab-1:/tmp/copy'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.once('exit', (code) => resolve({ code, stderr }));
    });
    assert.notEqual(copy.code, 0);
    assert.match(copy.stderr, /this is a VM console: it runs no commands/);
  });

  test('vnc --proxy-only --port 0 prints {"port":N} and serves two gvnccapture runs in a row, until Ctrl-C', async () => {
    const proxy = spawnCli(['vnc', 'lab-1', '--proxy-only', '--port', '0'], env);
    running.push(proxy);
    const { port } = json(await waitUntil(() => /^\{.*\}\n/.exec(proxy.stdout())?.[0], 15_000, 'the port line'));
    assert.ok(Number.isInteger(port) && port > 0);
    for (const run of [1, 2]) {
      const file = join(tmp.path, `screen-${run}.png`);
      const captured = await gvnccapture(port, file);
      assert.equal(captured.status, 0, captured.output);
      const size = pngSize(file);
      assert.ok(size.width >= 640 && size.height >= 400, JSON.stringify(size));
    }
    proxy.child.kill('SIGINT');
    assert.equal(await proxy.exited, 0, proxy.stderr());
  });

  test('vnc with --viewer runs it on the forwarded port and ends when it exits; --browser prints a noVNC URL that opens', async () => {
    const file = join(tmp.path, 'viewer.png');
    const viewed = await lifeline(['vnc', 'lab-1', '--viewer', `gvnccapture {host}:{display} ${file}`]);
    assert.equal(viewed.code, 0, viewed.stderr);
    assert.match(viewed.stderr, /The screen of lab-1 is at 127\.0\.0\.1:59\d\d/);
    assert.ok(pngSize(file).width >= 640);
    const browser = await lifeline(['vnc', 'lab-1', '--browser', '-o', 'json']);
    assert.equal(browser.code, 0, browser.stderr);
    const { url } = json(browser.stdout);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=/);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
  });

  test('operations: sessions close ends a connect with 17; a connect through a new endpoint ends with 18 when the endpoint is deleted; audit list --follow prints new events', async () => {
    const follow = spawnCli(['audit', 'list', '--follow', '--vm', 'lab-1', '--limit', '1', '-o', 'json'], env);
    running.push(follow);
    const live = spawnCli(['connect', 'lab-1', '--no-tty', '--replay', '0'], env);
    running.push(live);
    const [session] = await waitUntil(async () => {
      const open = json((await lifeline(['sessions', 'list', '-o', 'json'])).stdout);
      return open.length === 1 ? open : undefined;
    }, 15_000, 'the session');
    const closed = await lifeline(['sessions', 'close', session.id, '--yes']);
    assert.equal(closed.code, 0, closed.stderr);
    assert.equal(await live.exited, 17, live.stderr());
    assert.match(live.stderr(), /\(closed-by-admin\): closed by an administrator/);

    const endpoint = await lifeline(['endpoints', 'create', 'side', '--ip', '127.0.0.53', '--allow', '127.0.0.0/8', '-o', 'json']);
    assert.equal(endpoint.code, 0, endpoint.stderr);
    assert.equal(json(endpoint.stdout).ipAddress, '127.0.0.53');
    const through = spawnCli(['connect', 'lab-1', '--endpoint', 'side', '--no-tty', '--replay', '0'], env);
    running.push(through);
    await waitUntil(async () => json((await lifeline(['sessions', 'list', '-o', 'json'])).stdout).some((s: { endpoint: string }) => s.endpoint === 'side'), 15_000, 'the session through "side"');
    assert.equal((await lifeline(['endpoints', 'delete', 'side', '--yes'])).code, 0);
    assert.equal(await through.exited, 18, through.stderr());

    const events = await waitUntil(() => {
      const lines = follow.stdout().trim().split('\n').filter(Boolean).map((line) => json(line));
      return lines.some((e: { type: string }) => e.type === 'session.closed') ? lines : undefined;
    }, 10_000, 'session events from audit list --follow');
    assert.ok(events.some((e: { type: string; reason?: string }) => e.type === 'session.closed' && e.reason === 'closed-by-admin'), JSON.stringify(events.map((e: { type: string }) => e.type)));
    await follow.stop('SIGINT');
  });

  test('--ephemeral: a fresh key for one connection, the console\'s key as it was afterwards, no private key on disk', async () => {
    const before = json((await lifeline(['console', 'show', 'lab-1', '-o', 'json'])).stdout);
    const run = await lifeline(['connect', 'lab-1', '--ephemeral', '--no-tty', '--expect', 'lab-1:/#', '--timeout', '30'], '\n');
    assert.equal(run.code, 0, run.stderr);
    const afterwards = json((await lifeline(['console', 'show', 'lab-1', '-o', 'json'])).stdout);
    assert.equal(afterwards.keyFingerprint, before.keyFingerprint);
    assert.equal(afterwards.virtualMachineAccessId, before.virtualMachineAccessId);
    assert.equal(afterwards.enabled, true);
    assert.deepEqual([...filesContaining(home, /PRIVATE KEY/), ...filesContaining(runtime, /PRIVATE KEY/)], []);
    // The audit trail saw two re-keys: the ephemeral key on, the old one back.
    const audit = json((await lifeline(['audit', 'list', '--vm', 'lab-1', '--limit', '1000', '-o', 'json'])).stdout) as Array<{ type: string; action?: string; console?: { keyFingerprint?: string } }>;
    const rekeys = audit.filter((event) => event.action === 'console.patch' && event.console?.keyFingerprint).map((event) => event.console!.keyFingerprint);
    assert.equal(rekeys.at(-1), before.keyFingerprint, JSON.stringify(rekeys));
    assert.notEqual(rekeys.at(-2), before.keyFingerprint, JSON.stringify(rekeys));
  });

  test('every command that prints data gives JSON with -o json (and YAML with -o yaml)', async () => {
    const commands = [['relay', 'list'], ['console', 'show', 'lab-1'], ['console', 'list'], ['vm', 'list'], ['vm', 'show', 'lab-1'], ['sessions', 'list'], ['tokens', 'list'], ['endpoints', 'list'], ['audit', 'list', '--limit', '5'], ['config', 'ssh'], ['power', 'lab-1', 'nmi', '--yes'], ['tokens', 'create', 'cli-reader', '--scopes', 'consoles:read', '--vm', 'lab-*', '--expires-in', '1h']];
    for (const args of commands) {
      const run = await lifeline([...args, '-o', 'json']);
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
      json(run.stdout);
    }
    const yaml = await lifeline(['vm', 'list', '-o', 'yaml']);
    assert.match(yaml.stdout, /^- name: lab-1$/m);
    const token = json((await lifeline(['tokens', 'list', '-o', 'json'])).stdout).find((t: { name: string }) => t.name === 'cli-reader');
    assert.deepEqual(token.virtualMachines, ['lab-*']);
    assert.equal((await lifeline(['tokens', 'delete', token.id, '--yes'])).code, 0);
  });

  test('bad flags exit 2 naming the flag; an unknown VM exits 1 with the relay\'s code; a confirmation without a terminal asks for --yes', async () => {
    for (const [args, flag] of [[['connect', 'lab-1', '--bogus'], '--bogus'], [['connect', 'lab-1', '--timeout', 'soon'], '--timeout'], [['console', 'update', 'lab-1', '--enabled', 'maybe'], '--enabled'], [['vm', 'list', '-o', 'xml'], '--output'], [['console', 'create', 'lab-1', '--expiration', 'tomorrow'], '--expiration']] as const) {
      const run = await lifeline([...args]);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.ok(run.stderr.includes(flag), run.stderr);
    }
    assert.equal((await lifeline(['console'])).code, 1); // commander: a command group without a subcommand shows its help on stderr
    const missing = await lifeline(['console', 'show', 'no-such-vm']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /VirtualMachineNotFound/);
    const unconfirmed = await lifeline(['power', 'lab-1', 'reset']);
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /pass --yes to confirm/);
    const help = await lifeline(['connect', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--escape-char <char>/);
  });

  test('shell completion: bash completes commands and VM names; zsh and fish scripts are printed', async () => {
    const bin = join(tmp.path, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'lifeline'), `#!/bin/sh\nexec ${shellWords([process.execPath, LIFELINE_BIN])} "$@"\n`, { mode: 0o755 });
    const script = join(tmp.path, 'lifeline.bash');
    writeFileSync(script, (await lifeline(['completion', 'bash'])).stdout);
    const complete = async (line: string): Promise<string[]> => {
      const words = line.split(' ');
      const bash = `source /usr/share/bash-completion/bash_completion; source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; COMP_LINE='${line}'; COMP_POINT=${line.length}; __lifeline_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const child = spawn('bash', ['-c', bash], { env: { ...env, PATH: `${bin}:${env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await new Promise((resolve) => child.once('exit', resolve));
      return out.split('\n').map((w) => w.trim()).filter(Boolean);
    };
    assert.ok((await complete('lifeline con')).some((word) => word.startsWith('connect')), 'connect is offered');
    assert.ok((await complete('lifeline connect ')).some((word) => word.startsWith('lab-1')), 'lab-1 is offered');
    for (const shell of ['zsh', 'fish']) {
      const printed = await lifeline(['completion', shell]);
      assert.equal(printed.code, 0);
      assert.match(printed.stdout, /lifeline/);
      assert.match(printed.stdout, /complete/);
    }
  });

  test('no OS keychain (no D-Bus): relay add keeps no token, --token-file works for one command, --generate says why not, nothing secret is written under $HOME', async () => {
    const bareHome = join(tmp.path, 'bare-home');
    mkdirSync(bareHome, { recursive: true });
    const bare: NodeJS.ProcessEnv = { ...env, HOME: bareHome, XDG_DATA_HOME: join(bareHome, '.local', 'share'), XDG_RUNTIME_DIR: '' };
    for (const name of ['DBUS_SESSION_BUS_ADDRESS', 'DISPLAY', 'WAYLAND_DISPLAY', 'GNOME_KEYRING_CONTROL']) delete bare[name];
    const tokenFile = join(tmp.path, 'token');
    const added = await runCli(['relay', 'add', 'bare', '--url', relay.apiUrl, '--token-file', tokenFile], bare);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stderr, /No OS keychain .*the token was not kept\. Pass --token-file or LIFELINE_TOKEN/);
    const withoutToken = await runCli(['vm', 'list'], bare);
    assert.equal(withoutToken.code, 1);
    assert.match(withoutToken.stderr, /there is no OS keychain .*Pass --token-file FILE or set LIFELINE_TOKEN/);
    const listed = await runCli(['vm', 'list', '--token-file', tokenFile, '-o', 'json'], bare);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(json(listed.stdout)[0].name, 'lab-1');
    const generated = await runCli(['console', 'update', 'lab-1', '--generate', '--token-file', tokenFile], bare);
    assert.equal(generated.code, 1);
    assert.match(generated.stderr, /keeps the private key in the OS keychain, and there is none here/);
    const connected = await runCli(['connect', 'lab-1', '--ephemeral', '--token-file', tokenFile, '--no-tty', '--expect', 'lab-1:/#', '--timeout', '30'], { ...bare, LIFELINE_TOKEN: '' }, '\n');
    assert.equal(connected.code, 0, connected.stderr);
    assert.deepEqual(filesContaining(bareHome, new RegExp(`${relay.token}|PRIVATE KEY`)), []);
  });

  test('the desktop (browser mode) finds the relay and the key the CLI added, and opens the serial console without asking anything', async () => {
    web = await startBrowserMode(['--no-embedded'], { env });
    const chromium = await launchChromium();
    closeBrowser = chromium.close;
    const page = await chromium.browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(web.url);
    await vmRow(page, 'lab-1').waitFor({ timeout: 30_000 });
    assert.match((await vmRow(page, 'lab-1').textContent()) ?? '', /console on/);
    await runInSerialTab(page, 'lab-1', 'echo desktop-$((6*7))', /desktop-42/);
    assert.equal(await page.getByRole('dialog').count(), 0, 'no dialog asked for a token or a key');
  });

  test('an https relay with a self-signed certificate: refused until its fingerprint is given, then pinned; relay remove forgets it and its token', async () => {
    const tls = ephemeralConfig(tmp.path, 'tls', { api: { listen: '127.0.0.1:0', tls: 'on' }, virtualMachines: [] });
    const secure = await startRelay(tls.configPath, tls.dataDir);
    try {
      const tokenFile = join(tmp.path, 'tls-token');
      writeFileSync(tokenFile, secure.token, { mode: 0o600 });
      const refused = await lifeline(['relay', 'add', 'secure', '--url', secure.apiUrl, '--token-file', tokenFile]);
      assert.equal(refused.code, 1);
      const fingerprint = /--tls-fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/.exec(refused.stderr)?.[1];
      assert.ok(fingerprint, refused.stderr);
      assert.match(refused.stderr, /not trusted by this system \(it is self-signed\)/);
      const wrong = await lifeline(['relay', 'add', 'secure', '--url', secure.apiUrl, '--token-file', tokenFile, '--tls-fingerprint', '00'.repeat(32)]);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /presents the TLS certificate .*not the/);
      const added = await lifeline(['relay', 'add', 'secure', '--url', secure.apiUrl, '--token-file', tokenFile, '--tls-fingerprint', fingerprint, '-o', 'json']);
      assert.equal(added.code, 0, added.stderr);
      assert.equal(json(added.stdout).tlsFingerprint, fingerprint);
      const vms = await lifeline(['vm', 'list', '--relay', 'secure', '-o', 'json']);
      assert.deepEqual(json(vms.stdout), []);
      // Two relays now: a command without a VM must be told which.
      const ambiguous = await lifeline(['sessions', 'list']);
      assert.equal(ambiguous.code, 1);
      assert.match(ambiguous.stderr, /There are 2 relays \(lab, secure\): say which with --relay NAME/);
      const removed = await lifeline(['relay', 'remove', 'secure', '--yes']);
      assert.equal(removed.code, 0, removed.stderr);
      const id = json(added.stdout).id;
      assert.equal(await keytar.getPassword('lifeline', `token:${id}`), null);
      assert.deepEqual(json((await lifeline(['relay', 'list', '-o', 'json'])).stdout).map((r: { name: string }) => r.name), ['lab']);
    } finally {
      await secure.stop();
    }
  });
});
