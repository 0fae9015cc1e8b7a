import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import { closeCodeOfStatus, EXIT } from '../main/cli/errors.js';
import { startKeyAgent } from '../main/cli/key-agent.js';
import { parseEscapeChar, sshArguments } from '../main/cli/openssh.js';
import { render, renderTable } from '../main/cli/output.js';
import { viewerCommand } from '../main/cli/vnc.js';
import { desktopDataDir } from '../main/services/data-dir.js';
import { SettingsFile } from '../main/services/settings.js';
import { generateKeyPair } from '../main/services/ssh-keys.js';
import { tempDir } from './helpers/temp.js';

const tmp = tempDir('cli-units');
after(() => tmp.dispose());

describe('lifeline CLI: pure parts', () => {
  test('tables are kubectl-like: upper-case headings, padded columns, "-" for nothing; JSON and YAML are the data whole', () => {
    const rows = [{ name: 'lab-1', state: 'Running', agent: undefined }, { name: 'web-long-name', state: 'Stopped', agent: 'hv1' }];
    const columns = [{ heading: 'name', value: (r: (typeof rows)[number]) => r.name }, { heading: 'state', value: (r: (typeof rows)[number]) => r.state }, { heading: 'agent', value: (r: (typeof rows)[number]) => r.agent }];
    assert.equal(renderTable(rows, columns), 'NAME            STATE     AGENT\nlab-1           Running   -\nweb-long-name   Stopped   hv1\n');
    assert.deepEqual(JSON.parse(render('json', rows, { rows, columns })), JSON.parse(JSON.stringify(rows)));
    assert.match(render('yaml', rows, { rows, columns }), /^- name: lab-1\n {2}state: Running\n/);
    assert.equal(render('table', [], { rows: [], columns, empty: 'Nothing here.' }), 'Nothing here.\n');
  });

  test('exit codes are distinct, and the relay\'s statuses map back to their reasons', () => {
    const values = Object.values(EXIT);
    assert.equal(new Set(values).size, values.length);
    assert.equal(closeCodeOfStatus(10), 'displaced');
    assert.equal(closeCodeOfStatus(11), 'disabled');
    assert.equal(closeCodeOfStatus(16), 'shutdown');
    assert.equal(closeCodeOfStatus(1), undefined);
    assert.equal(closeCodeOfStatus(255), undefined);
  });

  test('--escape-char takes what OpenSSH -e takes: one character, ^X, or none', () => {
    for (const good of ['~', '#', '^]', '^a', 'none', 'é']) assert.equal(parseEscapeChar(good), good);
    for (const bad of ['ab', '', '^^^']) assert.throws(() => parseEscapeChar(bad), (error: { exitCode?: number }) => error.exitCode === EXIT.usage);
  });

  test('OpenSSH is told: only this key, this host key under its alias, publickey only, no forwarding; --no-tty means -T and BatchMode', () => {
    const args = sshArguments({ target: { host: '127.0.0.1', port: 2222, user: 'access-id' }, alias: 'lifeline-relay', knownHosts: '/k', identityFile: '/id.pub', agent: '/a.sock', replayLines: 5, escapeChar: '^a', tty: false });
    const text = args.join(' ');
    for (const option of ['HostKeyAlias=lifeline-relay', 'UserKnownHostsFile=/k', 'StrictHostKeyChecking=yes', 'IdentitiesOnly=yes', 'IdentityAgent=/a.sock', 'PreferredAuthentications=publickey', 'ForwardAgent=no', 'ClearAllForwardings=yes', 'SetEnv=LIFELINE_REPLAY=5', 'BatchMode=yes']) assert.ok(text.includes(option), option);
    assert.deepEqual(args.slice(-5), ['-p', '2222', '-l', 'access-id', '127.0.0.1']);
    assert.ok(args.includes('-T') && !args.includes('-t'));
    assert.equal(args[args.indexOf('-e') + 1], '^a');
    assert.ok(sshArguments({ target: { host: 'h', port: 1, user: 'u' }, alias: 'a', knownHosts: 'k', identityFile: 'i', tty: true }).includes('IdentityAgent=none'));
  });

  test('--viewer fills {host} {port} {display}, else gets 127.0.0.1::PORT appended', () => {
    assert.deepEqual(viewerCommand(5905, 'gvncviewer {host}:{display}'), { command: 'gvncviewer', args: ['127.0.0.1:5'] });
    assert.deepEqual(viewerCommand(40000, 'vncviewer -Shared'), { command: 'vncviewer', args: ['-Shared', '127.0.0.1::40000'] });
    assert.throws(() => viewerCommand(5901, '  '), /--viewer is empty/);
  });

  test('one data folder per user for the app, browser mode and the CLI', () => {
    assert.equal(desktopDataDir({ LIFELINE_DATA_DIR: '/srv/ll' }, 'linux', '/home/a'), '/srv/ll');
    assert.equal(desktopDataDir({}, 'linux', '/home/a'), '/home/a/.local/share/lifeline');
    assert.equal(desktopDataDir({ XDG_DATA_HOME: '/x' }, 'linux', '/home/a'), '/x/lifeline');
    assert.equal(desktopDataDir({}, 'darwin', '/Users/a'), '/Users/a/Library/Application Support/Lifeline');
    assert.equal(desktopDataDir({ APPDATA: 'C:\\Users\\a\\AppData\\Roaming' }, 'win32', 'C:\\Users\\a').replaceAll('\\', '/'), 'C:/Users/a/AppData/Roaming/Lifeline');
  });

  test('the settings file is shared: what one process writes the other reads, and an update keeps the other\'s change', () => {
    const file = join(tmp.path, 'settings.json');
    const desktop = new SettingsFile(file);
    const cli = new SettingsFile(file);
    const relay = (id: string) => ({ id, name: id, url: `http://127.0.0.1:${id.length}`, embedded: false, hostKeyFingerprint: 'SHA256:x', endpoint: 'default' });
    desktop.update((s) => void s.relays.push(relay('from-desktop')));
    cli.update((s) => void s.relays.push(relay('from-cli')));
    assert.deepEqual(desktop.get().relays.map((r) => r.id), ['from-desktop', 'from-cli']);
    desktop.update((s) => void (s.theme = 'dark'));
    assert.deepEqual(cli.get().relays.map((r) => r.id), ['from-desktop', 'from-cli']);
    assert.equal(cli.get().theme, 'dark');
  });

  test('the in-process agent answers OpenSSH\'s session-bind extension with a failure and still lists its one key (ssh-add -l)', async () => {
    const key = generateKeyPair();
    const agent = await startKeyAgent(key.privateKey, join(tmp.path, 'agent.sock'));
    try {
      // session-bind@openssh.com (type 27 with a body), then REQUEST_IDENTITIES (11), in one write.
      const name = Buffer.from('session-bind@openssh.com');
      const body = Buffer.concat([Buffer.from([27]), Buffer.alloc(4), name, Buffer.alloc(40, 1)]);
      body.writeUInt32BE(name.length, 1);
      const extension = Buffer.concat([Buffer.alloc(4), body]);
      extension.writeUInt32BE(body.length, 0);
      const replies = await new Promise<Buffer>((resolve, reject) => {
        const socket = connect(agent.path);
        const chunks: Buffer[] = [];
        socket.on('data', (chunk) => {
          chunks.push(chunk);
          const all = Buffer.concat(chunks);
          if (all.length >= 9 && all.length >= 9 + all.readUInt32BE(5)) {
            socket.destroy();
            resolve(all);
          }
        });
        socket.on('error', reject);
        socket.write(Buffer.concat([extension, Buffer.from([0, 0, 0, 1, 11])]));
      });
      assert.deepEqual([...replies.subarray(0, 5)], [0, 0, 0, 1, 5]); // SSH_AGENT_FAILURE
      assert.equal(replies[9], 12); // SSH_AGENT_IDENTITIES_ANSWER
      // Asynchronously: the agent answers from this process.
      const { stdout: listed } = await promisify(execFile)('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: agent.path }, encoding: 'utf8' });
      assert.match(listed, new RegExp(key.fingerprint.replace(/[+/]/g, (c) => `\\${c}`)));
    } finally {
      await agent.close();
    }
  });
});
