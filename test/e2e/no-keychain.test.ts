import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runInSerialTab, vmRow } from '../helpers/app-page.js';
import { launchChromium } from '../helpers/browser.js';
import { startBrowserMode, type BrowserMode } from '../helpers/browser-mode.js';
import { runCleanups } from '../helpers/cleanup.js';
import { ephemeralConfig, RELAY_BIN, type RelayProcess, startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * A headless server: no D-Bus session, no display, an empty XDG_RUNTIME_DIR, so no Secret
 * Service. The app still starts on its embedded default with keys and tokens in memory, says so,
 * runs a serial console, and leaves no private key or token on disk.
 */

const tmp = tempDir('no-keychain');
const home = join(tmp.path, 'home');
mkdirSync(home, { recursive: true });
const dataDir = join(home, '.local', 'share', 'lifeline'); // the default: nothing passed
const REMOTE_TOKEN = 'llt_remote-relay-token-that-must-not-reach-the-disk-0123456789';

function headlessEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_RUNTIME_DIR: '', XDG_CACHE_HOME: process.env.XDG_CACHE_HOME || join(homedir(), '.cache') };
  for (const name of ['DBUS_SESSION_BUS_ADDRESS', 'DISPLAY', 'WAYLAND_DISPLAY', 'GNOME_KEYRING_CONTROL', 'XDG_DATA_HOME', 'XDG_CONFIG_HOME']) delete env[name];
  return env;
}

/** Every regular file under `dir`. */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isDirectory()) return files(path);
    return stat.isFile() ? [path] : [];
  });
}

let web: BrowserMode | undefined;
let remote: RelayProcess | undefined;
let closeBrowser: (() => Promise<void>) | undefined;
after(() =>
  runCleanups([
    () => closeBrowser?.(),
    () => web?.stop(),
    () => remote?.stop(),
    () => execFileSync(process.execPath, [RELAY_BIN, 'lab', 'down', '--dir', join(dataDir, 'embedded', 'lab')], { stdio: 'ignore' }),
    tmp.dispose,
  ]),
);

test('without any keychain: the app works for the run, says so, and writes no key or token to disk', async () => {
  // A second relay, "remote", whose API token the user types in.
  const remoteRelay = ephemeralConfig(tmp.path, 'remote', { virtualMachines: [] });
  remote = await startRelay(remoteRelay.configPath, remoteRelay.dataDir, { LIFELINE_ADMIN_TOKEN: REMOTE_TOKEN });

  web = await startBrowserMode([], { env: headlessEnv() });
  assert.match(web.output(), /keychain: No OS keychain \(.+\)/, 'the log names the keychain as the cause');
  const chromium = await launchChromium();
  closeBrowser = chromium.close;
  const page = await chromium.browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(web.url);

  const notice = page.getByRole('note', { name: 'Keychain' });
  await notice.waitFor({ timeout: 10_000 });
  assert.match((await notice.textContent()) ?? '', /No OS keychain .*held in memory for this run only.*new key at the next start.*API token entered again/);
  await vmRow(page, 'lab-1').waitFor({ timeout: 120_000 });
  assert.doesNotMatch((await page.locator('header').textContent()) ?? '', /failed|D-Bus/, 'the embedded relay did not fail on the keychain');

  await runInSerialTab(page, 'lab-1', 'uname -a', /Linux lab-1/);

  await page.getByRole('button', { name: 'Add a relay' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add relay' });
  await dialog.getByRole('textbox', { name: 'Relay name' }).fill('remote');
  await dialog.getByRole('textbox', { name: 'Relay URL' }).fill(remote.apiUrl);
  await dialog.getByLabel('Relay API token').fill(REMOTE_TOKEN);
  await dialog.getByRole('button', { name: 'Add relay' }).click();
  const remoteRow = page.getByRole('list', { name: 'Relays' }).getByRole('listitem', { name: 'remote' });
  await remoteRow.waitFor({ timeout: 10_000 });
  assert.equal(await remoteRow.getAttribute('data-status'), 'ok');
  await chromium.close();
  closeBrowser = undefined;
  await web.stop();

  // The next start: the remote relay is remembered, its token is not; the UI says to enter it again.
  web = await startBrowserMode([], { env: headlessEnv() });
  const again = await launchChromium();
  closeBrowser = again.close;
  const page2 = await again.browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page2.goto(web.url);
  const remoteAgain = page2.getByRole('list', { name: 'Relays' }).getByRole('listitem', { name: 'remote' });
  await waitUntil(async () => (await remoteAgain.getAttribute('data-status').catch(() => null)) === 'unauthorized', 30_000, 'the remote relay without its token');
  assert.match((await remoteAgain.textContent()) ?? '', /not kept from the last run\. Edit the relay and enter its token again/);
  await again.close();
  closeBrowser = undefined;
  await web.stop();

  // Nothing secret anywhere under $HOME (which holds the app's data dir), once the watchdog is done too.
  await waitUntil(() => !existsSync(join(dataDir, 'embedded', 'watchdog.pid')), 15_000, 'the watchdog to finish');
  const leaks: string[] = [];
  for (const file of files(home)) {
    const text = readFileSync(file).toString('latin1');
    if (/PRIVATE KEY/.test(text)) leaks.push(`${file}: a private key`);
    if (text.includes(REMOTE_TOKEN)) leaks.push(`${file}: the remote relay's token`);
    const token = /llt_[A-Za-z0-9_-]{20,}/.exec(text);
    if (token) leaks.push(`${file}: a token ${token[0].slice(0, 10)}…`);
  }
  const scanned = files(home);
  for (const expected of ['settings.json', join('embedded', 'relay.log'), join('embedded', 'lab', 'data', 'lifeline.db')]) {
    assert.ok(scanned.includes(join(dataDir, expected)), `the scan saw ${expected} (${scanned.join(', ')})`);
  }
  assert.match(readFileSync(join(dataDir, 'settings.json'), 'utf8'), /"name": "remote"/, 'the remote relay is remembered, without its token');
  assert.deepEqual(leaks, []);
});
