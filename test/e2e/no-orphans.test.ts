import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startBrowserMode, type BrowserMode } from '../helpers/browser-mode.js';
import { runCleanups } from '../helpers/cleanup.js';
import { RELAY_BIN } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * However the app on its embedded default ends (the terminal closed, SIGTERM, kill -9 of its main
 * process), its lab VMs and relay do not outlive it; after a kill -9 that also took its watchdog,
 * the next start stops what was left before it starts its own.
 */

/** PIDs of processes whose command line has all of `parts`. */
function processes(...parts: string[]): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return parts.every((part) => cmdline.includes(part));
      } catch {
        return false;
      }
    })
    .map(Number)
    .sort((a, b) => a - b);
}

const tmp = tempDir('orphans');
const dataDir = join(tmp.path, 'app');
const vms = (): number[] => processes('qemu-system', dataDir);
const relays = (): number[] => processes('lifeline-relay.js', 'serve', dataDir);
const watchdogs = (): number[] => processes('watchdog.js', dataDir);
const running: BrowserMode[] = [];

after(() =>
  runCleanups([
    ...running.map((web) => () => web.stop()),
    () => {
      for (const pid of [...watchdogs(), ...relays()]) process.kill(pid, 'SIGKILL');
    },
    () => execFileSync(process.execPath, [RELAY_BIN, 'lab', 'down', '--dir', join(dataDir, 'embedded', 'lab')], { stdio: 'ignore' }),
    tmp.dispose,
  ]),
);

async function startApp(viaStart = false): Promise<BrowserMode> {
  const web = await startBrowserMode(['--data-dir', dataDir], { viaStart });
  running.push(web);
  await waitUntil(() => /Embedded relay running at/.test(web.output()), 120_000, `the embedded relay to run:\n${web.output()}`);
  return web;
}

async function exited(web: BrowserMode): Promise<void> {
  await waitUntil(() => web.child.exitCode !== null || web.child.signalCode !== null, 30_000, 'the app to exit');
}

test('npm start, then the terminal closes (SIGHUP to its process group): no VM or relay is left', async () => {
  const web = await startApp(true);
  assert.equal(vms().length, 2, 'two lab VMs run');
  assert.equal(relays().length, 1, 'one embedded relay runs');
  process.kill(-web.child.pid!, 'SIGHUP');
  await exited(web);
  assert.deepEqual(vms(), [], 'the lab VMs stopped with the app');
  assert.deepEqual(relays(), [], 'the relay stopped with the app');
  await waitUntil(() => watchdogs().length === 0, 15_000, 'the watchdog to exit');
});

test('SIGTERM to the app: no VM or relay is left', async () => {
  const web = await startApp();
  assert.equal(vms().length, 2);
  web.child.kill('SIGTERM');
  await exited(web);
  assert.deepEqual(vms(), []);
  assert.deepEqual(relays(), []);
});

test('kill -9 of the main process: its watchdog stops the VMs and the relay; a new start runs exactly its own two', async () => {
  const first = await startApp();
  const before = vms();
  assert.equal(before.length, 2);
  first.child.kill('SIGKILL');
  await exited(first);
  await waitUntil(() => vms().length === 0 && relays().length === 0, 30_000, 'the watchdog to stop the VMs and the relay');
  const second = await startApp();
  assert.equal(vms().length, 2, 'the new run has its two VMs');
  assert.equal(relays().length, 1);
  await second.stop();
  assert.deepEqual(vms(), []);
});

test('kill -9 of the main process and its watchdog: the next start stops what was left, then runs exactly its own two', async () => {
  const first = await startApp();
  const leftVms = vms();
  const leftRelay = relays();
  assert.equal(leftVms.length, 2);
  first.child.kill('SIGKILL');
  for (const pid of watchdogs()) process.kill(pid, 'SIGKILL');
  await exited(first);
  assert.deepEqual(vms(), leftVms, 'with nobody to clean up, the VMs are still running');
  const second = await startApp();
  assert.match(second.output(), /stopped what the previous run left running: (the embedded relay, )?the lab VMs lab-1, lab-2/);
  const now = vms();
  assert.equal(now.length, 2, 'exactly two VMs: the new run\'s');
  assert.ok(now.every((pid) => !leftVms.includes(pid)), 'none of them is a leftover');
  assert.equal(relays().length, 1);
  assert.ok(relays().every((pid) => !leftRelay.includes(pid)));
  await second.stop();
  assert.deepEqual(vms(), []);
  assert.deepEqual(relays(), []);
});
