import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { runCleanups } from '../helpers/cleanup.js';
import { startLabRelay, type LabRelay } from '../helpers/lab-relay.js';
import { OpenSshSession, type KeyPair } from '../helpers/openssh.js';
import { REPO_ROOT, type RelayProcess } from '../helpers/relay-process.js';
import { waitUntil } from '../helpers/wait.js';

const PYTHON_SSH = join(REPO_ROOT, 'test', 'helpers', 'python-ssh.py');

/** ssh-audit's report without colours, as lines. */
function sshAudit(port: number): string[] {
  const result = spawnSync('ssh-audit', ['-p', String(port), '127.0.0.1'], { encoding: 'utf8', timeout: 60_000 });
  const escape = String.fromCharCode(27);
  return `${result.stdout}${result.stderr}`.replace(new RegExp(`${escape}\\[[0-9;]*m`, 'g'), '').split('\n');
}

/**
 * The SSH side from outside, as an auditor and other clients see it: Debian's ssh-audit finds no
 * weak algorithm, and OpenSSH 9.2, PuTTY's plink, ssh2's client and Debian's Python SSH libraries
 * (paramiko, asyncssh: what automation uses) all reach the console.
 */
describe('SSH algorithms: a clean ssh-audit, and every client still connects', () => {
  let env: LabRelay;
  let relay: RelayProcess;
  let key: KeyPair;
  let user: string;
  let hostKey: string;
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    env = await startLabRelay('ssh-hardening');
    ({ relay, key, user } = env);
    hostKey = (await relay.api('GET', '/v1/relay')).body.sshHostKeys[0].fingerprint;
  });

  after(() => runCleanups([...cleanups.reverse(), () => env?.dispose()]));

  test('ssh-audit: no failure, no warning, no recommendation; only curve25519, Ed25519, AEAD and AES-CTR ciphers, SHA-2 EtM MACs; no compression', () => {
    const lines = sshAudit(relay.sshPort);
    const report = lines.join('\n');
    assert.match(report, /\(gen\) compression: disabled/);
    const algorithms = (kind: string): string[] => lines.filter((line) => line.startsWith(`(${kind}) `)).map((line) => line.slice(kind.length + 3).trim().split(/\s+/)[0]!);
    assert.deepEqual(algorithms('kex'), ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'kex-strict-s-v00@openssh.com']);
    assert.deepEqual(algorithms('key'), ['ssh-ed25519']);
    assert.deepEqual(algorithms('enc'), ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr']);
    assert.deepEqual(algorithms('mac'), ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com']);
    assert.deepEqual(lines.filter((line) => line.includes('[fail]')), [], 'no failure');
    // Debian 12's ssh-audit (2.5.0) predates strict key exchange (the Terrapin fix, OpenSSH 9.6): it lists the
    // kex-strict-s-v00@openssh.com marker as an unknown algorithm. That marker is kept on purpose; any other warning fails.
    const warnings = lines.filter((line) => line.includes('[warn]'));
    assert.deepEqual(warnings.map((line) => line.replace(/\s+/g, ' ').trim()), ['(kex) kex-strict-s-v00@openssh.com -- [warn] unknown algorithm']);
    assert.deepEqual(lines.filter((line) => line.startsWith('(rec)')), [], 'nothing to add or remove');
  });

  test('OpenSSH 9.2 reaches the console with these algorithms', async () => {
    const session = new OpenSshSession({ port: relay.sshPort, user, key: key.privateKeyPath });
    cleanups.push(() => session.close());
    session.send('\r');
    await session.waitFor(/# /, 60_000);
    await session.run('echo openssh-$((20+1))', /openssh-21/);
    session.close();
  });

  test('PuTTY\'s plink reaches the console, checking the host key by its fingerprint', async () => {
    const ppk = join(env.dir, 'key.ppk');
    execFileSync('puttygen', [key.privateKeyPath, '-O', 'private', '-o', ppk]);
    const plink = spawn('plink', ['-batch', '-ssh', '-t', '-P', String(relay.sshPort), '-i', ppk, '-hostkey', hostKey, `${user}@127.0.0.1`], { stdio: ['pipe', 'pipe', 'pipe'] });
    cleanups.push(() => plink.kill('SIGKILL'));
    let output = '';
    plink.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('latin1')));
    plink.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('latin1')));
    plink.stdin.write('\r');
    await waitUntil(() => /# /.test(output), 60_000, `the prompt through plink; output: ${JSON.stringify(output.slice(-500))}`);
    plink.stdin.write('echo plink-$((30+3))\r');
    await waitUntil(() => /plink-33/.test(output), 20_000, `the command's output through plink: ${JSON.stringify(output.slice(-500))}`);
    plink.kill('SIGKILL');
  });

  test('ssh2\'s client (what the desktop app uses) connects and negotiates curve25519 with an AEAD cipher', async () => {
    const client = new ssh2.Client();
    cleanups.push(() => client.end());
    const negotiated = await new Promise<{ kex: string; cipher: string }>((resolve, reject) => {
      client.on('handshake', (info) => resolve({ kex: info.kex, cipher: info.cs.cipher }));
      client.on('error', reject);
      client.connect({ host: '127.0.0.1', port: relay.sshPort, username: user, privateKey: execFileSync('cat', [key.privateKeyPath]) });
    });
    assert.match(negotiated.kex, /^curve25519-sha256/);
    assert.match(negotiated.cipher, /gcm|chacha20-poly1305/);
    await new Promise<void>((resolve, reject) => {
      client.on('ready', () => resolve());
      client.on('error', reject);
    });
    client.end();
  });

  // Debian's own python3 (not a pyenv or venv one first on PATH): the libraries come from python3-paramiko and python3-asyncssh.
  for (const [library, cipher] of [['paramiko', /^aes(128|192|256)-ctr$/], ['asyncssh', /gcm|chacha20-poly1305/]] as const) {
    test(`${library} (Debian 12's, as automation uses it) pins the host key, opens a shell with a pty and runs a command; cipher ${cipher}`, async () => {
      const child = spawn('/usr/bin/python3', [PYTHON_SSH, library, '127.0.0.1', String(relay.sshPort), user, key.privateKeyPath, hostKey, `echo ${library}-$((40+2))`, `${library}-42`], { stdio: ['ignore', 'pipe', 'pipe'] });
      cleanups.push(() => child.kill('SIGKILL'));
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 0, `${library} failed: ${stderr.slice(-2000)}`);
      const negotiated = JSON.parse(stdout.trim()) as { cipher: string; mac: string | null };
      assert.match(negotiated.cipher, cipher);
      // AES-CTR is only ever agreed with an encrypt-then-MAC SHA-2 MAC.
      if (/ctr$/.test(negotiated.cipher)) assert.match(String(negotiated.mac), /^hmac-sha2-(256|512)-etm@openssh\.com$/);
    });
  }
});
