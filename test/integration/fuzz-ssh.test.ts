import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import ssh2 from 'ssh2';
import { startFakeConsole, type FakeConsole } from '../bench/fake-console.js';
import { runCleanups } from '../helpers/cleanup.js';
import { generateKey, type KeyPair } from '../helpers/openssh.js';
import { openSsh2Shell } from '../helpers/ssh2-shell.js';
import { ephemeralConfig, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/** Cases in CI; `LIFELINE_FUZZ_RUNS` (npm run fuzz) runs more. */
const RUNS = Number(process.env.LIFELINE_FUZZ_RUNS ?? 60);

type Operation =
  | { kind: 'exec'; command: string }
  | { kind: 'subsystem'; name: string }
  | { kind: 'shell'; rows: number; cols: number; term: string; resize: [number, number] }
  | { kind: 'env'; name: string; value: string }
  | { kind: 'forwardOut'; host: string; port: number }
  | { kind: 'forwardIn'; address: string; port: number }
  | { kind: 'streamlocal'; path: string }
  | { kind: 'x11' };

const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), fc.constantFrom('sftp', 'netconf', 'ls', 'cat /etc/passwd', '', '\0', 'a'.repeat(2000)));
const size = fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom(0, 1, 65535, 2 ** 31 - 1, 2 ** 32 - 1));
const operations: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant('exec' as const), command: text }),
  fc.record({ kind: fc.constant('subsystem' as const), name: text }),
  fc.record({ kind: fc.constant('shell' as const), rows: size, cols: size, term: fc.oneof(fc.constantFrom('xterm', 'vt100', 'dumb'), text), resize: fc.tuple(size, size) }),
  fc.record({ kind: fc.constant('env' as const), name: text, value: text }),
  fc.record({ kind: fc.constant('forwardOut' as const), host: fc.oneof(fc.constantFrom('vnc', 'localhost', '127.0.0.1', '169.254.169.254', '::1', ''), text), port: fc.oneof(fc.constantFrom(5900, 22, 80, 0, 65535), fc.integer({ min: 0, max: 65535 })) }),
  fc.record({ kind: fc.constant('forwardIn' as const), address: fc.constantFrom('127.0.0.1', '0.0.0.0', 'localhost', ''), port: fc.integer({ min: 0, max: 65535 }) }),
  fc.record({ kind: fc.constant('streamlocal' as const), path: fc.oneof(fc.constantFrom('/var/run/docker.sock', '/run/libvirt/libvirt-sock', '/'), text) }),
  fc.record({ kind: fc.constant('x11' as const) }),
);

/** Runs one operation on an authenticated ssh2 connection; resolves with what happened (never hangs past 5 s). */
function run(client: ssh2.Client, op: Operation): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('no answer in 5 s'), 5000);
    const done = (outcome: string): void => {
      clearTimeout(timer);
      resolve(outcome);
    };
    // A command (exec, subsystem) is accepted only to be told why not: exit status 1 and a [lifeline] line on stderr.
    const onCommand = (error: Error | undefined, channel?: ssh2.ClientChannel): void => {
      if (error) return done(`refused: ${error.message}`);
      let stderr = '';
      channel!.on('data', () => undefined);
      channel!.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      channel!.on('error', () => undefined);
      let status: number | null = null;
      // Decided on close: stderr may still be on its way when the exit status arrives.
      channel!.on('exit', (code: number | null) => void (status = code));
      channel!.on('close', () => done(status === 1 && stderr.includes('[lifeline] this is a VM console: it runs no commands') ? 'refused: told it runs no commands' : 'accepted'));
    };
    const onChannel = (error: Error | undefined, channel?: ssh2.ClientChannel): void => {
      if (error) return done(`refused: ${error.message}`);
      channel!.on('data', () => undefined);
      channel!.stderr?.on('data', () => undefined);
      channel!.on('error', () => undefined);
      channel!.close();
      done('accepted');
    };
    try {
      switch (op.kind) {
        case 'exec':
          return client.exec(op.command, onCommand);
        case 'subsystem':
          return client.subsys(op.name, onCommand);
        case 'env':
          return client.exec('true', { env: { [op.name || 'X']: op.value } }, onCommand);
        case 'x11':
          return client.exec('true', { x11: true }, onCommand);
        case 'shell':
          return client.shell({ rows: op.rows, cols: op.cols, term: op.term }, (error, channel) => {
            if (error) return done(`refused: ${error.message}`);
            channel.on('data', () => undefined);
            channel.on('error', () => undefined);
            channel.setWindow(op.resize[0], op.resize[1], 0, 0);
            setTimeout(() => {
              channel.close();
              done('shell');
            }, 50);
          });
        case 'forwardOut':
          return client.forwardOut('127.0.0.1', 40000, op.host, op.port, onChannel);
        case 'forwardIn':
          return client.forwardIn(op.address, op.port, (error) => done(error ? `refused: ${error.message}` : 'accepted'));
        case 'streamlocal':
          return client.openssh_forwardOutStreamLocal(op.path, onChannel);
      }
    } catch (error) {
      done(`client threw: ${(error as Error).message}`);
    }
  });
}

/**
 * SSH from ssh2's client with random channel types, requests, environment, window sizes,
 * subsystems, exec commands and forward targets, on an authenticated connection: each is
 * refused cleanly (or is the one shell / VNC forward there is), the relay stays up, and another
 * VM's live session is not disturbed.
 */
describe('fuzzing the SSH side with ssh2\'s client', () => {
  let relay: RelayProcess;
  let key: KeyPair;
  const fakes: FakeConsole[] = [];
  const users: Record<string, string> = {};
  const tmp = tempDir('fuzz-ssh');
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    for (const name of ['fuzz-vm', 'other-vm']) fakes.push(await startFakeConsole(join(tmp.path, `${name}.sock`), 1024));
    const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay', {
      virtualMachines: [
        { name: 'fuzz-vm', serial: join(tmp.path, 'fuzz-vm.sock') },
        { name: 'other-vm', serial: join(tmp.path, 'other-vm.sock') },
      ],
    });
    relay = await startRelay(configPath, dataDir);
    key = generateKey(tmp.path, 'key');
    for (const vm of ['fuzz-vm', 'other-vm']) {
      users[vm] = (await relay.api('PUT', `/v1/virtualMachines/${vm}/console`, { enabled: true, sshPublicKey: { keyData: key.publicKey } })).body.virtualMachineAccessId;
    }
  });

  after(() => runCleanups([...cleanups.reverse(), () => relay?.stop(), ...fakes.map((f) => () => f.close()), tmp.dispose]));

  test(`${RUNS} random sequences of channel and global requests: refused cleanly, the relay up, another session untouched`, async () => {
    const privateKey = readFileSync(key.privateKeyPath);
    // The bystander: a live serial session on another VM, echoing through the fake console.
    const other = await openSsh2Shell({ port: relay.sshPort, user: users['other-vm']!, privateKey });
    cleanups.push(() => other.client.end());
    let echoed = '';
    other.shell.on('data', (chunk: Buffer) => (echoed += chunk.toString('latin1')));
    const outcomes = new Map<string, number>();

    await fc.assert(
      fc.asyncProperty(fc.array(operations, { minLength: 1, maxLength: 6 }), async (ops) => {
        const client = new ssh2.Client();
        try {
          await new Promise<void>((resolve, reject) => {
            client.on('ready', () => resolve());
            client.on('error', reject);
            client.connect({ host: '127.0.0.1', port: relay.sshPort, username: users['fuzz-vm']!, privateKey, readyTimeout: 10_000 });
          });
          client.on('error', () => undefined);
          for (const op of ops) {
            const outcome = await run(client, op);
            const label = `${op.kind}: ${outcome.replace(/:.*/, '')}`;
            outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
            if (outcome === 'accepted') {
              // What may be accepted: the VNC forward's one destination (no VNC here: refused) and nothing else.
              assert.fail(`${JSON.stringify(op).slice(0, 200)} was accepted`);
            }
            assert.notEqual(outcome, 'no answer in 5 s', `${JSON.stringify(op).slice(0, 200)} got no answer`);
          }
        } finally {
          client.end();
        }
        const health = await fetch(`${relay.apiUrl}/healthz`);
        assert.equal(health.status, 200);
      }),
      { numRuns: RUNS },
    );
    // The bystander's session went on: it still echoes.
    const marker = `still-here-${Date.now()}`;
    other.shell.write(`${marker}\r`);
    await waitUntil(() => echoed.includes(marker), 5000, 'the other session echoes');
    const listed = await relay.api('GET', '/v1/sessions');
    assert.ok(listed.body.value.some((s: { virtualMachine: string }) => s.virtualMachine === 'other-vm'), 'the other session is listed');
    console.error(`fuzz-ssh outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  });
});
