import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type ssh2 from 'ssh2';
import { auditFiles } from '../../relay/src/audit/audit-format.js';
import { runCleanups } from '../helpers/cleanup.js';
import { startLabRelay, type LabRelay } from '../helpers/lab-relay.js';
import { generateKey, OPENSSH_BATCH_OPTIONS, sshOnce } from '../helpers/openssh.js';
import { freePort } from '../helpers/ports.js';
import { openSsh2Shell } from '../helpers/ssh2-shell.js';
import { RELAY_BIN, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * The audit trail cannot be flushed or silently shortened, and every refusal says why
 * (issue 24, parts 1 and 6), against a real relay, the lab VM, OpenSSH and ssh2's client.
 */
type Event = Record<string, any>;

describe('audit limits and refusals with reasons', () => {
  let lab: LabRelay;
  let relay: RelayProcess;
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    lab = await startLabRelay('audit-limits', { ssh: { port: 0, maxSessions: 2 } });
    relay = lab.relay;
  });
  after(() => runCleanups([...cleanups.reverse(), () => lab?.dispose()]));

  const trail = (): Event[] => auditFiles(relay.dataDir).flatMap((file) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Event));
  const verify = (): { status: number | null; out: string } => {
    const result = spawnSync(process.execPath, [RELAY_BIN, 'audit', 'verify', '--config', relay.configPath], { encoding: 'utf8' });
    return { status: result.status, out: result.stdout + result.stderr };
  };

  test('a token looping the same 403 writes one event, not thousands; distinct refusals are capped per token', async () => {
    const token = (await relay.api('POST', '/v1/tokens', { name: 'web-only', scopes: ['consoles:read', 'consoles:write'], virtualMachines: ['web-*'] })).body.token as string;
    const before = trail().length;
    const as = { authorization: `Bearer ${token}` };
    let refused = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = 0; i < 150; i++) if ((await relay.api('GET', '/v1/virtualMachines/lab-1/console', undefined, as)).status === 403) refused++;
      }),
    );
    assert.equal(refused, 2400);
    const same = trail().slice(before);
    assert.equal(same.filter((event) => event.action === 'access.denied').length, 1, `${same.length} new events for 2,400 identical refusals`);
    // 200 different refusals: at most audit.refusalsPerMinute (60) are written one by one.
    for (let i = 0; i < 200; i++) assert.equal((await relay.api('GET', `/v1/virtualMachines/db-${i}`, undefined, as)).status, 403);
    const distinct = trail().slice(before).filter((event) => event.action === 'access.denied');
    assert.ok(distinct.length <= 60, `${distinct.length} written`);
    // The log is not grown per request either.
    const logged = relay.output().split('\n').filter((line) => line.includes('"msg":"request"') && line.includes('"status":403')).length;
    assert.ok(logged <= 61, `${logged} request lines logged for 2,600 refusals`);
    const metrics = String((await relay.api('GET', '/metrics')).body);
    assert.match(metrics, /lifeline_audit_refusals_coalesced_total\{how="repeated"\} 2399/);
  });

  test('failed SSH logins are logged and audited with the check that failed; the client hears only the generic failure', async () => {
    const stranger = generateKey(lab.dir, 'stranger');
    const wrongKey = await sshOnce({ port: relay.sshPort, user: lab.user, key: stranger.privateKeyPath });
    assert.notEqual(wrongKey.code, 0);
    assert.match(wrongKey.output, /Permission denied \(publickey\)/);
    assert.doesNotMatch(wrongKey.output, /wrong-key|lifeline/);
    await sshOnce({ port: relay.sshPort, user: '00000000-0000-4000-8000-000000000000', key: lab.key.privateKeyPath });
    await sshOnce({ port: relay.sshPort, user: 'root', key: lab.key.privateKeyPath });
    assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { enabled: false })).status, 200);
    await sshOnce({ port: relay.sshPort, user: lab.user, key: lab.key.privateKeyPath });
    assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { enabled: true })).status, 200);
    const failed = await waitUntil(() => {
      const events = trail().filter((event) => event.type === 'ssh.login.failed');
      return events.some((event) => event.check === 'disabled') ? events : undefined;
    }, 5000, 'the failed logins in the trail');
    const checks = new Set(failed.map((event) => `${event.user.slice(0, 8)}:${event.check}`));
    assert.ok(checks.has(`${lab.user.slice(0, 8)}:wrong-key`), [...checks].join(' '));
    assert.ok(checks.has('00000000:unknown-access-id'));
    assert.ok(checks.has('root:not-an-access-id'));
    assert.ok(checks.has(`${lab.user.slice(0, 8)}:disabled`));
    const wrong = failed.find((event) => event.check === 'wrong-key')!;
    assert.equal(wrong.remoteAddress, '127.0.0.1');
    assert.match(wrong.keyFingerprint, /^SHA256:/);
    assert.doesNotMatch(JSON.stringify(failed), /AAAA/, 'never the key itself');
    assert.match(relay.output(), /"check":"wrong-key".*"msg":"SSH login refused"/);
  });

  test('exec and other forwards are refused with a reason OpenSSH prints', async () => {
    const exec = spawnSync('ssh', [...OPENSSH_BATCH_OPTIONS, '-i', lab.key.privateKeyPath, '-p', String(relay.sshPort), `${lab.user}@127.0.0.1`, 'uname', '-a'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(exec.status, 1, exec.stderr);
    assert.match(exec.stderr, /\[lifeline\] this is a VM console: it runs no commands/);

    const port = await freePort();
    // OpenSSH prints a refused forward at INFO ("channel 2: open failed: …").
    const options = OPENSSH_BATCH_OPTIONS.map((option) => (option === 'LogLevel=ERROR' ? 'LogLevel=INFO' : option));
    const ssh = spawn('ssh', [...options, '-i', lab.key.privateKeyPath, '-p', String(relay.sshPort), '-N', '-L', `127.0.0.1:${port}:example.com:80`, `${lab.user}@127.0.0.1`], { stdio: ['ignore', 'ignore', 'pipe'] });
    cleanups.push(() => ssh.kill('SIGKILL'));
    let stderr = '';
    ssh.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await waitUntil(
      () =>
        new Promise<boolean>((resolve) => {
          const socket = connect({ port, host: '127.0.0.1' });
          socket.once('connect', () => setTimeout(() => (socket.destroy(), resolve(stderr.includes('open failed'))), 300));
          socket.once('error', () => resolve(false));
        }),
      15_000,
      'the forward to be refused',
    ).catch((error: Error) => assert.fail(`${error.message}; ssh said: ${stderr}`));
    assert.match(stderr, /open failed: administratively prohibited: only vnc:5900 can be forwarded \(the VM's screen: ssh -L 5901:vnc:5900; vnc-observe:5900 to watch it read-only\), not example\.com:80/);
  });

  test('at most ssh.maxSessions channels at once on a connection, and per console a minute, each refusal saying so', async () => {
    const { client } = await openSsh2Shell({ port: relay.sshPort, user: lab.user, privateKey: readFileSync(lab.key.privateKeyPath) });
    cleanups.push(() => client.end());
    const forward = (): Promise<ssh2.ClientChannel> => new Promise((resolve, reject) => client.forwardOut('127.0.0.1', 0, 'vnc', 5900, (error, stream) => (error ? reject(error) : resolve(stream))));
    const vnc = await forward();
    await assert.rejects(forward(), /too many channels open on this connection \(at most 2, ssh\.maxSessions\); close one first/);
    // A channel closes once both sides ended: its unread data (the RFB greeting) must flow.
    const closed = new Promise((resolve) => vnc.once('close', resolve));
    vnc.resume();
    vnc.close();
    await closed;
    // Reopened again and again, the console's budget (6 × maxSessions a minute) runs out.
    let opened = 0;
    const refusal = await (async () => {
      for (;;) {
        try {
          const channel = await forward();
          opened++;
          const gone = new Promise((resolve) => channel.once('close', resolve));
          channel.resume();
          channel.close();
          await gone;
        } catch (error) {
          return error as Error;
        }
        if (opened > 12) return undefined;
      }
    })();
    assert.match(refusal?.message ?? 'none refused', /too many channels opened for this console in the last minute \(at most 12\); wait a minute/);
    assert.ok(opened <= 10, `${opened} reopened before the refusal`);
    const refusals = trail().filter((event) => event.type === 'ssh.channel.refused');
    assert.ok(refusals.some((event) => /ssh\.maxSessions/.test(event.reason) && event.virtualMachine === 'lab-1'));
  });

  test('an empty bearer token is told it is missing; a good request does not reset an address\'s back-off', async () => {
    const ask = (authorization: string): Promise<{ status: number; body: string; ms: number }> =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        // From an address of its own, so the back-off does not slow the other tests.
        httpGet(`${relay.apiUrl}/v1/relay`, { localAddress: '127.0.0.44', headers: { authorization } }, (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body, ms: Date.now() - started }));
        }).on('error', reject);
      });
    const empty = await ask('Bearer ');
    assert.equal(empty.status, 401);
    assert.match(JSON.parse(empty.body).error.message, /^the bearer token is missing: send Authorization: Bearer <token>/);
    for (let i = 0; i < 7; i++) await ask(`Bearer ${'x'.repeat(40)}`);
    assert.equal((await ask(`Bearer ${relay.token}`)).status, 200);
    const after = await ask(`Bearer ${'x'.repeat(40)}`);
    assert.equal(after.status, 401);
    assert.ok(after.ms >= 1500, `the next bad token still waits (${after.ms} ms)`);
  });

  test('an invalid power action is told the valid ones', async () => {
    const bad = await relay.api('POST', '/v1/virtualMachines/lab-1/powerActions', { action: 'explode' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /^action must be one of reset, .*powerOff.*nmi/);
  });

  test('audit verify: ok with pruned history noted; fails on a head cut, a tail cut, an emptied or deleted trail, naming what is missing', async () => {
    assert.equal((await relay.stop()), 0);
    const flushed = trail();
    assert.ok(flushed.some((event) => event.action === 'access.denied' && event.repeated === 2399), 'the repeats are written as one event when the relay stops');
    assert.ok(flushed.some((event) => event.type === 'audit.suppressed' && event.source.startsWith('token:') && event.count > 0));
    const ok = verify();
    assert.equal(ok.status, 0, ok.out);
    const path = join(relay.dataDir, 'audit.jsonl');
    const whole = readFileSync(path, 'utf8');
    const lines = whole.split('\n').filter(Boolean);

    assert.ok(lines.length > 20, `${lines.length} lines`);
    writeFileSync(path, `${lines.slice(10).join('\n')}\n`); // sed -i '1,10d' audit.jsonl
    assert.equal(verify().status, 1, verify().out);
    assert.match(verify().out, /FAILED: .*audit\.jsonl line 1: events 1–10 are missing at the head/);

    writeFileSync(path, `${lines.slice(0, -5).join('\n')}\n`);
    assert.match(verify().out, new RegExp(`events ${(lines.length - 4).toLocaleString('en-US')}–${lines.length.toLocaleString('en-US')} are missing at the end`));

    writeFileSync(path, '');
    assert.match(verify().out, /FAILED: .*the trail is empty or missing, but the relay's store recorded/);
    rmSync(path);
    assert.equal(verify().status, 1);

    // A relay started on the deleted trail says so in it, and verify keeps failing on that.
    relay = await startRelay(relay.configPath, relay.dataDir);
    cleanups.push(() => relay.stop());
    assert.match(relay.output(), /the audit trail does not reach the head the store recorded/);
    await relay.stop();
    assert.match(verify().out, /when the relay started, it found events 1–[\d,]+ missing \(audit\.gap event 1\)/);
    writeFileSync(path, whole);
  });
});
