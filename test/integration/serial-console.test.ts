import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2 from 'ssh2';
import { startLab, type Lab } from '../helpers/lab.js';
import { generateKey, OpenSshSession, sshOnce, type KeyPair } from '../helpers/openssh.js';
import { openSsh2Shell } from '../helpers/ssh2-shell.js';
import { startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

const PROMPT = (vm: string): RegExp => new RegExp(`${vm}:[^\\n]*# `);

describe('SSH serial console over real QEMU lab VMs and the OpenSSH client', () => {
  let lab: Lab;
  let relay: RelayProcess;
  const tmp = tempDir('serial');
  const sessions: OpenSshSession[] = [];
  let keyA: KeyPair;
  let keyB: KeyPair;

  before(async () => {
    lab = startLab(2);
    // 50 simultaneous connects from one address is what one test is about: above the default MaxStartups.
    relay = await startRelay(testConfig(lab.configPath, `${tmp.path}/data`, { ssh: { port: 0, maxStartups: '200:30:400', perSourceMaxStartups: 200 } }), `${tmp.path}/data`);
    keyA = generateKey(tmp.path, 'key-a');
    keyB = generateKey(tmp.path, 'key-b');
  });

  after(async () => {
    for (const session of sessions) session.close();
    await relay?.stop();
    lab?.down();
    tmp.dispose();
  });

  async function putConsole(vm: string, key: KeyPair, extra: Record<string, unknown> = {}): Promise<string> {
    const response = await relay.api('PUT', `/v1/virtualMachines/${vm}/console`, { enabled: true, sshPublicKey: { keyData: key.publicKey }, ...extra });
    assert.ok(response.status === 200 || response.status === 201, JSON.stringify(response.body));
    return response.body.virtualMachineAccessId as string;
  }

  async function openConsole(vm: string, user: string, key: KeyPair): Promise<OpenSshSession> {
    const session = new OpenSshSession({ port: relay.sshPort, user, key: key.privateKeyPath });
    sessions.push(session);
    session.send('\r');
    await session.waitFor(PROMPT(vm), 30_000);
    return session;
  }

  /** Resolves with the ms from `start` until the client printed the reason line and exited. */
  async function closedWithin(session: OpenSshSession, reason: string, start: number): Promise<number> {
    await session.waitFor(`[lifeline] session closed: ${reason}`, 5000);
    await session.exited;
    return Date.now() - start;
  }

  test('a console created over the API opens with ssh -tt and runs a command in the VM', async () => {
    const accessId = await putConsole('lab-1', keyA);
    const session = await openConsole('lab-1', accessId, keyA);
    await session.run('uname -a', /Linux lab-1 \S+ #1 SMP/);
    // Arithmetic done by the guest's shell: the relay cannot make this up.
    await session.run('echo ll-$((6*7))-ok', 'll-42-ok');
    session.close();
  });

  test('OpenSSH ~B then h: a serial break reaches the guest, whose kernel prints its SysRq help; no telnet byte reaches the client', async () => {
    const accessId = await putConsole('lab-1', keyA);
    const session = await openConsole('lab-1', accessId, keyA);
    const from = session.output.length;
    // OpenSSH takes ~B at the start of a line (after Enter), and sends the SSH break request.
    session.send('\r~B');
    await new Promise((resolve) => setTimeout(resolve, 300));
    session.send('h');
    await session.waitFor(/sysrq: HELP/, 15_000, from);
    assert.doesNotMatch(session.output, /\xff/, 'telnet negotiation never reaches the user');
    // The guest's tty keeps the "h" too: clear the line (Ctrl-U), then the shell goes on as before.
    session.send('\x15');
    await session.run('echo after-$((40+2))', 'after-42');
    // Enter, ~B and the SysRq key in one write: OpenSSH sends data, a break request and data microseconds
    // apart. The relay holds the break until the Enter has settled in the guest (QEMU's UART would mark an
    // unread byte as the break and the guest would miss it) and the "h" behind the break, in order.
    const again = session.output.length;
    session.send('\r~Bh');
    await session.waitFor(/sysrq: HELP/, 15_000, again);
    session.send('\x15');
    await session.run('echo again-$((40+3))', 'again-43');
    session.close();
  });

  test('a second serial session closes the first, whose client sees the reason', async () => {
    const accessId = await putConsole('lab-1', keyA);
    const first = await openConsole('lab-1', accessId, keyA);
    const second = await openConsole('lab-1', accessId, keyA);
    // The displaced user is told who took over: the new session's id prefix, address and path.
    await first.waitFor(/\[lifeline\] session closed: another session was opened for lab-1 \(session [0-9a-f]{8} from 127\.0\.0\.1 via SSH\)/, 5000);
    assert.notEqual(await first.exited, null);
    await second.run('echo still-$((1+1))', 'still-2');
    second.close();
  });

  for (const change of ['disable', 'delete', 'rekey', 'expire'] as const) {
    test(`${change} closes a live session within 1 s with a reason and refuses the next attempt`, async (t) => {
      const other = await openConsole('lab-2', await putConsole('lab-2', keyB), keyB);
      const expiration = change === 'expire' ? new Date(Date.now() + 4000).toISOString() : undefined;
      const accessId = await putConsole('lab-1', keyA, expiration ? { expiration } : {});
      const session = await openConsole('lab-1', accessId, keyA);
      let start: number;
      let reason: string;
      switch (change) {
        case 'disable':
          start = Date.now();
          assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { enabled: false })).status, 200);
          reason = 'the console for lab-1 was disabled';
          break;
        case 'delete':
          start = Date.now();
          assert.equal((await relay.api('DELETE', '/v1/virtualMachines/lab-1/console')).status, 204);
          reason = 'the console for lab-1 was deleted';
          break;
        case 'rekey':
          start = Date.now();
          assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { sshPublicKey: { keyData: keyB.publicKey } })).status, 200);
          reason = 'the console key for lab-1 was changed';
          break;
        case 'expire':
          start = Date.parse(expiration!);
          assert.ok(session.running, 'the session must be open before the console expires');
          reason = 'the console for lab-1 expired';
          break;
      }
      const elapsed = await closedWithin(session, reason, start);
      assert.ok(elapsed < 1000, `closed after ${elapsed} ms`);
      t.diagnostic(`${change}: the client printed the reason and exited ${elapsed} ms after the change`);

      const retry = await sshOnce({ port: relay.sshPort, user: accessId, key: keyA.privateKeyPath });
      assert.equal(retry.code, 255);
      assert.match(retry.output, /Permission denied \(publickey\)/);
      if (change === 'rekey') {
        const rekeyed = await openConsole('lab-1', accessId, keyB);
        rekeyed.close();
      }
      // Another VM's session was not disturbed.
      assert.ok(other.running);
      await other.run('echo other-$((2+3))', 'other-5');
      other.close();
    });
  }

  /** An ssh2 client with one shell open: for what OpenSSH cannot do on cue (a second channel, input at an exact moment). */
  async function ssh2Shell(user: string, key: KeyPair): Promise<{ client: ssh2.Client; shell: ssh2.ClientChannel; output: () => string }> {
    const { client, shell } = await openSsh2Shell({ port: relay.sshPort, user, privateKey: readFileSync(key.privateKeyPath) });
    let output = '';
    shell.on('data', (data: Buffer) => (output += data.toString()));
    shell.write('\r');
    await waitUntil(() => PROMPT('lab-1').test(output), 30_000, 'the prompt');
    return { client, shell, output: () => output };
  }

  test('a re-keyed connection opens no new channel during its close grace, and its typing never reaches the VM', async () => {
    const accessId = await putConsole('lab-1', keyA);
    const old = await ssh2Shell(accessId, keyA);
    try {
      assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { sshPublicKey: { keyData: keyB.publicKey } })).status, 200);
      // Still inside the ~800 ms the relay gives a revoked client to read its reason line.
      old.shell.write('echo stale-$((40+2))\r');
      const shellAgain = await new Promise<string>((resolve) => old.client.shell({ term: 'xterm' }, (error) => resolve(error ? 'refused' : 'opened')));
      const forward = await new Promise<string>((resolve) => old.client.forwardOut('127.0.0.1', 0, 'vnc', 5900, (error) => resolve(error ? 'refused' : 'opened')));
      assert.equal(shellAgain, 'refused', 'a new shell on a revoked connection');
      assert.equal(forward, 'refused', 'a new VNC forward on a revoked connection');
      // The new key holder's console: the stale command never ran.
      const fresh = await openConsole('lab-1', accessId, keyB);
      await fresh.run('echo fresh-$((2*5))', 'fresh-10');
      assert.doesNotMatch(fresh.output, /stale-42/, 'the revoked client\'s input reached the VM');
      const sessions = (await relay.api('GET', '/v1/sessions')).body.value as Array<{ virtualMachine: string }>;
      assert.equal(sessions.filter((s) => s.virtualMachine === 'lab-1').length, 1, 'only the new key holder has a session');
      fresh.close();
    } finally {
      old.client.end();
    }
  });

  test('after a re-key or a delete, the next holder does not see the previous holder\'s output', async () => {
    for (const change of ['rekey', 'delete'] as const) {
      const accessId = await putConsole('lab-1', keyA);
      const first = await openConsole('lab-1', accessId, keyA);
      await first.run(`echo private-${change}-$((6*7))`, `private-${change}-42`);
      first.close();
      await first.exited;
      let nextId = accessId;
      if (change === 'rekey') assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { sshPublicKey: { keyData: keyB.publicKey } })).status, 200);
      else {
        assert.equal((await relay.api('DELETE', '/v1/virtualMachines/lab-1/console')).status, 204);
        nextId = await putConsole('lab-1', keyB);
      }
      const next = await openConsole('lab-1', nextId, keyB);
      await next.run('echo next-$((1+2))', 'next-3');
      assert.doesNotMatch(next.output, new RegExp(`private-${change}-42`), `${change}: the replay showed the previous holder's output`);
      next.close();
    }
  });

  test('wrong key, unknown user, malformed user and password auth are refused alike', async () => {
    const accessId = await putConsole('lab-1', keyA);
    const stranger = randomUUID();
    const attempts: Array<[string, Awaited<ReturnType<typeof sshOnce>>]> = [
      [accessId, await sshOnce({ port: relay.sshPort, user: accessId, key: keyB.privateKeyPath })],
      [stranger, await sshOnce({ port: relay.sshPort, user: stranger, key: keyA.privateKeyPath })],
      ['root', await sshOnce({ port: relay.sshPort, user: 'root', key: keyA.privateKeyPath })],
      [accessId, await sshOnce({ port: relay.sshPort, user: accessId, extra: ['-o', 'PreferredAuthentications=password,keyboard-interactive'] })],
    ];
    for (const [user, attempt] of attempts) {
      assert.equal(attempt.code, 255);
      // The same generic failure whatever was wrong: no oracle.
      assert.equal(attempt.output.trim(), `${user}@127.0.0.1: Permission denied (publickey).`);
    }
    // A client that insists on a password (ssh2 sends it regardless of the advertised methods) is refused too.
    const passwordResult = await new Promise<string>((resolve) => {
      const client = new ssh2.Client();
      client.on('ready', () => {
        client.end();
        resolve('accepted');
      });
      client.on('error', (error) => resolve(error.message));
      client.connect({ host: '127.0.0.1', port: relay.sshPort, username: accessId, password: 'hunter2', readyTimeout: 10_000 });
    });
    assert.equal(passwordResult, 'All configured authentication methods failed');
  });

  test('50 simultaneous connects to one VM leave exactly one session and the relay stays healthy', async (t) => {
    const started = Date.now();
    const accessId = await putConsole('lab-1', keyA);
    const privateKey = readFileSync(keyA.privateKeyPath);
    const clients: ssh2.Client[] = [];
    let open = 0;
    let settled = 0;
    await Promise.all(
      Array.from({ length: 50 }, () =>
        new Promise<void>((resolve) => {
          const client = new ssh2.Client();
          clients.push(client);
          client.on('error', () => resolve());
          client.on('ready', () => {
            client.shell({ term: 'xterm' }, (error, stream) => {
              settled++;
              if (error) return resolve();
              open++;
              stream.on('data', () => undefined);
              stream.on('close', () => open--);
              resolve();
            });
          });
          client.connect({ host: '127.0.0.1', port: relay.sshPort, username: accessId, privateKey, readyTimeout: 30_000 });
        }),
      ),
    );
    try {
      assert.equal(settled, 50, 'every client got its shell answered');
      t.diagnostic(`50 connects authenticated and answered in ${Date.now() - started} ms`);
      await waitUntil(() => open === 1, 10_000, 'exactly one open shell');
      await sleep(500);
      assert.equal(open, 1);
      const listed = await relay.api('GET', '/v1/sessions');
      assert.equal(listed.body.value.filter((s: { virtualMachine: string; kind: string }) => s.virtualMachine === 'lab-1' && s.kind === 'serial').length, 1);
      assert.equal((await fetch(`${relay.apiUrl}/healthz`)).status, 200);
    } finally {
      for (const client of clients) client.end();
    }
    const next = await openConsole('lab-1', accessId, keyA);
    await next.run('echo next-$((3*3))', 'next-9');
    next.close();
  });

  test('sessions are listed with their details and an administrator can close one', async () => {
    const accessId = await putConsole('lab-1', keyA);
    const session = await openConsole('lab-1', accessId, keyA);
    await session.run('echo counted', 'counted');
    const listed = await waitUntil(async () => {
      const value = (await relay.api('GET', '/v1/sessions')).body.value as Array<Record<string, unknown>>;
      return value.find((s) => s.virtualMachine === 'lab-1');
    }, 5000, 'the session in GET /v1/sessions');
    assert.equal(listed.kind, 'serial');
    assert.equal(listed.path, 'ssh');
    assert.equal(listed.endpoint, 'default');
    assert.equal(listed.remoteAddress, '127.0.0.1');
    assert.ok((listed.bytesIn as number) >= 'echo counted\r'.length);
    assert.ok((listed.bytesOut as number) > 0);
    assert.ok(Date.now() - Date.parse(listed.startedAt as string) < 60_000);
    assert.equal((await relay.api('DELETE', `/v1/sessions/${listed.id as string}`)).status, 204);
    await session.waitFor('[lifeline] session closed: closed by an administrator', 5000);
    await session.exited;
    const again = await relay.api('DELETE', `/v1/sessions/${listed.id as string}`);
    assert.equal(again.status, 404);
    assert.equal(again.body.error.code, 'SessionNotFound');
  });

  test('power actions over QMP: nmi reaches the guest kernel, reset reboots the VM (its boot banner on the open console); each is listed per VM', async () => {
    const listed = await relay.api('GET', '/v1/virtualMachines/lab-2');
    assert.deepEqual(listed.body.powerActions, ['reset', 'shutdown', 'powerOff', 'nmi']);
    const accessId = await putConsole('lab-2', keyA);
    const session = await openConsole('lab-2', accessId, keyA);
    let from = session.output.length;
    const nmi = await relay.api('POST', '/v1/virtualMachines/lab-2/powerActions', { action: 'nmi' });
    assert.equal(nmi.status, 202, JSON.stringify(nmi.body));
    assert.deepEqual(nmi.body, { virtualMachine: 'lab-2', action: 'nmi', status: 'Accepted' });
    await session.waitFor(/NMI received/, 15_000, from);
    from = session.output.length;
    const reset = await relay.api('POST', '/v1/virtualMachines/lab-2/powerActions', { action: 'reset' });
    assert.equal(reset.status, 202, JSON.stringify(reset.body));
    // The kernel boots again and the guest's shell starts over on the same console session.
    await session.waitFor(/BusyBox v1\.\d+/, 60_000, from);
    session.send('\r');
    await session.waitFor(PROMPT('lab-2'), 30_000, from);
    await session.run('cat /proc/uptime', /^\s*\d+\.\d+ /m);
    const powerOn = await relay.api('POST', '/v1/virtualMachines/lab-2/powerActions', { action: 'powerOn' });
    assert.equal(powerOn.status, 409);
    assert.equal(powerOn.body.error.code, 'PowerActionNotSupported');
    assert.match(powerOn.body.error.message, /nothing can start a VM whose QEMU process is not running/);
    const bad = await relay.api('POST', '/v1/virtualMachines/lab-2/powerActions', { action: 'explode' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.message, 'action must be one of reset, shutdown, powerOff, powerOn, nmi');
    assert.equal((await relay.api('POST', '/v1/virtualMachines/nope/powerActions', { action: 'reset' })).body.error.code, 'VirtualMachineNotFound');
    assert.match(relay.output(), /"action":"reset".*"msg":"power action"|"msg":"power action".*"action":"reset"/, 'logged, with the token that asked');

    // shutdown is the ACPI request, which the lab guest ignores: it keeps running. powerOff is a hard stop.
    assert.equal((await relay.api('POST', '/v1/virtualMachines/lab-2/powerActions', { action: 'shutdown' })).status, 202);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal((await relay.api('GET', '/v1/virtualMachines/lab-2')).body.powerState, 'Running', 'the guest ignored the ACPI request');
    from = session.output.length;
    const powerOff = await relay.api('POST', '/v1/virtualMachines/lab-2/powerActions', { action: 'powerOff' });
    assert.equal(powerOff.status, 202, JSON.stringify(powerOff.body));
    await session.waitFor('[lifeline] serial console disconnected', 10_000, from);
    const off = await waitUntil(async () => {
      const vm = (await relay.api('GET', '/v1/virtualMachines/lab-2')).body;
      return vm.powerState === 'Unavailable' ? vm : undefined;
    }, 10_000, 'lab-2 to be gone');
    assert.deepEqual(off.powerActions, [], 'no action is offered for an Unavailable VM');
    session.close();
  });
});
