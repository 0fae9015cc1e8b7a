import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { launchChromium } from '../helpers/browser.js';
import { startBrowserMode } from '../helpers/browser-mode.js';
import { runCleanups } from '../helpers/cleanup.js';
import { RELAY_BIN } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/** PIDs of QEMU processes whose command line mentions `dir`. */
function qemuUnder(dir: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return cmdline.includes('qemu-system') && cmdline.includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const tmp = tempDir('embedded');
after(() => runCleanups([() => execFileSync(process.execPath, [RELAY_BIN, 'lab', 'down', '--dir', join(tmp.path, 'app', 'embedded', 'lab')], { stdio: 'ignore' }), tmp.dispose]));

test('first run on the embedded default: lab VMs appear with progress shown; quitting stops the relay and the VMs', async () => {
  const web = await startBrowserMode(['--data-dir', join(tmp.path, 'app')]);
  const chromium = await launchChromium();
  try {
    const page = await chromium.browser.newPage();
    await page.goto(web.url);
    const status = page.locator('header [role="status"]');
    await waitUntil(async () => /Embedded relay running at/.test((await status.textContent()) ?? ''), 90_000, 'the embedded relay to run');
    await page.getByRole('list', { name: 'Virtual machines' }).getByRole('listitem', { name: 'lab-2', exact: true }).waitFor({ timeout: 30_000 });
    assert.equal(qemuUnder(tmp.path).length, 2, 'two lab VMs run');
    assert.match(web.output(), /embedded relay: Preparing the lab VMs/);
  } finally {
    await chromium.close();
    await web.stop();
  }
  assert.deepEqual(qemuUnder(tmp.path), [], 'quitting stopped the lab VMs');
});
