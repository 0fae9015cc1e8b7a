import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeConsole, type FakeConsole } from '../bench/fake-console.js';
import { writeAuditTrail } from '../helpers/audit-trail.js';
import { runCleanups } from '../helpers/cleanup.js';
import { generateKey } from '../helpers/openssh.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { openSsh2Shell } from '../helpers/ssh2-shell.js';
import { tempDir } from '../helpers/temp.js';

/**
 * Reading the audit trail is asynchronous and streamed: a console keeps echoing within 200 ms
 * while a client reads a 50 MiB trail to its end (a filter that matches nothing).
 */
describe('audit trail reads do not hold up the consoles', () => {
  const tmp = tempDir('audit-read-latency');
  let relay: RelayProcess;
  let echo: FakeConsole;
  let shell: Awaited<ReturnType<typeof openSsh2Shell>>['shell'];
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    const dataDir = join(tmp.path, 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    writeAuditTrail(dataDir, 4, 12.5 * 1024 * 1024);
    echo = await startFakeConsole(join(tmp.path, 'echo.sock'), 0);
    cleanups.push(() => echo.close());
    const configPath = join(tmp.path, 'relay.json');
    writeFileSync(configPath, JSON.stringify({ dataDir, api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, virtualMachines: [{ name: 'echo', serial: echo.path }] }));
    relay = await startRelay(configPath, dataDir);
    cleanups.push(() => relay.stop());
    const key = generateKey(tmp.path, 'key');
    const put = await relay.api('PUT', '/v1/virtualMachines/echo/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    const opened = await openSsh2Shell({ port: relay.sshPort, user: put.body.virtualMachineAccessId, privateKey: readFileSync(key.privateKeyPath) });
    cleanups.push(() => opened.client.end());
    shell = opened.shell;
  });

  after(() => runCleanups([...cleanups.reverse(), tmp.dispose]));

  /** Types one byte and resolves with the milliseconds until it is echoed. */
  const echoOnce = (byte: number): Promise<number> =>
    new Promise((resolve) => {
      const start = performance.now();
      const onData = (data: Buffer): void => {
        if (!data.includes(byte)) return;
        shell.off('data', onData);
        resolve(performance.now() - start);
      };
      shell.on('data', onData);
      shell.write(Buffer.from([byte]));
    });

  test('a serial session echoes within 200 ms while a 50 MiB trail is read to its end', async () => {
    const trailBytes = readdirSync(join(tmp.path, 'data')).filter((name) => name.startsWith('audit')).reduce((sum, name) => sum + statSync(join(tmp.path, 'data', name)).size, 0);
    assert.ok(trailBytes >= 50 * 1024 * 1024, `a trail of ${trailBytes} bytes`);
    await echoOnce(0x61); // the session is up and echoing
    let reading = true;
    const started = performance.now();
    const read = relay.api('GET', '/v1/auditEvents?vm=none&limit=1').finally(() => (reading = false));
    const during: number[] = [];
    while (reading) {
      during.push(await echoOnce(0x61 + (during.length % 26)));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const result = await read;
    const readMs = performance.now() - started;
    assert.equal(result.status, 200, JSON.stringify(result.body));
    assert.deepEqual(result.body.value, [], 'no event matches, so every file was read to its end');
    assert.ok(during.length >= 3, `the echo was measured during the read (${during.length} times in ${readMs.toFixed(0)} ms)`);
    const slowest = Math.max(...during);
    assert.ok(slowest < 200, `every echo within 200 ms during the ${readMs.toFixed(0)} ms read; slowest ${slowest.toFixed(1)} ms of ${during.length}`);
  });
});
