import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startBrowserMode, type BrowserMode } from '../helpers/browser-mode.js';
import { runCleanups } from '../helpers/cleanup.js';
import { ephemeralConfig, REPO_ROOT } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

const tmp = tempDir('web-life');
let web: BrowserMode | undefined;
after(() => runCleanups([() => web?.stop(), tmp.dispose]));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('browser mode: one app per data folder, and closing its terminal (SIGHUP) stops its relay too', async () => {
  const { configPath } = ephemeralConfig(tmp.path, 'relay', { virtualMachines: [{ name: 'vm1', vnc: join(tmp.path, 'absent.sock') }] });
  const dataDir = join(tmp.path, 'app');
  web = await startBrowserMode(['--relay-config', configPath, '--data-dir', dataDir]);
  const relayPid = await waitUntil(() => {
    const children = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(web!.child.pid)], { encoding: 'utf8' });
    const line = children.split('\n').find((l) => l.includes('lifeline-relay') && l.includes(' serve '));
    return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
  }, 20_000, 'the embedded relay process');

  // A second app on the same data folder refuses to start, and says why.
  const second = spawn(process.execPath, [join(REPO_ROOT, 'dist-desktop', 'main', 'web.js'), '--port', '0', '--relay-config', configPath, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let secondOutput = '';
  second.stdout!.on('data', (chunk: Buffer) => (secondOutput += chunk.toString()));
  second.stderr!.on('data', (chunk: Buffer) => (secondOutput += chunk.toString()));
  const secondCode = await new Promise<number | null>((resolve) => second.once('exit', resolve));
  assert.equal(secondCode, 3, secondOutput);
  assert.match(secondOutput, /already running on .* \(pid \d+\)/);
  assert.equal(alive(relayPid), true, 'the first app\'s relay is untouched');

  // The terminal closes: the app and its relay stop.
  web.child.kill('SIGHUP');
  await waitUntil(() => web!.child.exitCode !== null, 20_000, 'browser mode to exit on SIGHUP');
  assert.equal(web.child.exitCode, 0);
  await waitUntil(() => !alive(relayPid), 5000, 'the embedded relay to be gone');
});
