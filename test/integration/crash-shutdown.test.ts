import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startFakeConsole } from '../bench/fake-console.js';
import { runCleanups } from '../helpers/cleanup.js';
import { generateKey } from '../helpers/openssh.js';
import { openSsh2Shell } from '../helpers/ssh2-shell.js';
import { ephemeralConfig, type RelayProcess, startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

const tmp = tempDir('crash');
let relay: RelayProcess | undefined;
const cleanups: Array<() => unknown> = [];
after(() => runCleanups([() => relay?.stop('SIGKILL'), ...cleanups, tmp.dispose]));

test('a bug that escapes every handler is logged, sessions are told why, and the relay exits 1', async () => {
  const serial = await startFakeConsole(join(tmp.path, 'serial.sock'), 0);
  cleanups.push(() => serial.close());
  const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay', { virtualMachines: [{ name: 'vm1', serial: serial.path }] });
  // The bug, injected: an exception thrown from a timer once the relay is up (the file says when).
  const trigger = join(tmp.path, 'throw-now');
  const inject = `data:text/javascript,import{existsSync}from'node:fs';const t=setInterval(()=>{if(existsSync(${JSON.stringify(trigger)})){clearInterval(t);throw new Error('injected bug')}},50);`;
  relay = await startRelay(configPath, dataDir, {}, ['--import', inject]);
  const key = generateKey(tmp.path, 'key');
  const created = await relay.api('PUT', '/v1/virtualMachines/vm1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
  const { client, shell } = await openSsh2Shell({ port: relay.sshPort, user: created.body.virtualMachineAccessId, privateKey: readFileSync(key.privateKeyPath) });
  cleanups.push(() => client.end());
  let output = '';
  shell.on('data', (data: Buffer) => (output += data.toString()));
  writeFileSync(trigger, '');
  const code = await new Promise<number | null>((resolve) => relay!.child.once('exit', (exitCode) => resolve(exitCode)));
  assert.equal(code, 1);
  assert.match(relay.output(), /"uncaught exception: shutting down"/);
  assert.match(relay.output(), /injected bug/);
  await waitUntil(() => output.includes('[lifeline] session closed: the relay hit an internal error and is restarting'), 5000, 'the reason line');
});
