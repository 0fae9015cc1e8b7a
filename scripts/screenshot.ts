/**
 * Regenerates the UI screenshots in docs/ from the real app in browser mode (lab VMs, the
 * embedded relay on their config, Debian's Chromium): the VM list, a serial tab showing
 * `uname -a`, a VNC tab, a confirmation, adding an https relay (its certificate to confirm) and
 * a relay whose token is limited, each in the light and the dark theme.
 * Run it with `npm run screenshot` (needs a Secret Service: run-tests' D-Bus wrapper provides one).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import keytar from 'keytar';
import type { Page } from 'playwright-core';
import { runInSerialTab } from '../test/helpers/app-page.js';
import { launchChromium } from '../test/helpers/browser.js';
import { startBrowserMode } from '../test/helpers/browser-mode.js';
import { runCleanups } from '../test/helpers/cleanup.js';
import { startLab } from '../test/helpers/lab.js';
import { httpsApi } from '../test/helpers/https-api.js';
import { REPO_ROOT, startRelay, testConfig } from '../test/helpers/relay-process.js';
import { tempDir } from '../test/helpers/temp.js';
import { waitUntil } from '../test/helpers/wait.js';

const out = join(REPO_ROOT, 'docs', 'screenshots');
mkdirSync(out, { recursive: true });
const tmp = tempDir('screenshot');
const lab = startLab(3);

/** A test config of the lab holding only `names` (renamed by `rename`): lab-1 and lab-2 for the app, lab-3 for a remote TLS relay. */
function labConfig(dataDir: string, names: string[], overrides: Record<string, unknown> = {}, rename: Record<string, string> = {}): string {
  const path = testConfig(lab.configPath, dataDir, overrides);
  const config = JSON.parse(readFileSync(path, 'utf8')) as { virtualMachines: Array<{ name: string }> };
  config.virtualMachines = config.virtualMachines.filter((vm) => names.includes(vm.name)).map((vm) => ({ ...vm, name: rename[vm.name] ?? vm.name }));
  writeFileSync(path, JSON.stringify(config));
  return path;
}

const web = await startBrowserMode(['--relay-config', labConfig(join(tmp.path, 'relay'), ['lab-1', 'lab-2']), '--data-dir', join(tmp.path, 'app')]);
const secureDir = join(tmp.path, 'secure');
const secure = await startRelay(labConfig(secureDir, ['lab-3'], { api: { listen: '127.0.0.1:0', tls: 'on' } }, { 'lab-3': 'web-1' }), secureDir);
const chromium = await launchChromium();

/** The same view in both themes (the app follows the OS: emulate it). */
async function both(page: Page, name: string): Promise<void> {
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForTimeout(400);
    const path = join(out, `${name}-${scheme}.png`);
    await page.screenshot({ path });
    process.stdout.write(`${path}\n`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

try {
  const page = await chromium.browser.newPage({ viewport: { width: 1440, height: 860 } });
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  await page.goto(web.url);
  const row = page.getByRole('list', { name: 'Virtual machines' }).getByRole('listitem', { name: 'lab-1', exact: true });
  await row.waitFor({ timeout: 60_000 });
  await page.getByRole('list', { name: 'Virtual machines' }).getByRole('listitem', { name: 'lab-2', exact: true }).waitFor();
  await both(page, 'vm-list');

  const serial = await runInSerialTab(page, 'lab-1', 'uname -a; uptime', /Linux lab-1/);
  await serial.getByRole('searchbox', { name: 'Search terminal output' }).fill('lab-1');
  await serial.locator('summary[aria-label="Break and SysRq"]').click();
  await both(page, 'break-menu');
  await serial.locator('summary[aria-label="Break and SysRq"]').click();
  await serial.getByRole('button', { name: 'Next match' }).click();
  await serial.locator('.xterm-helper-textarea').focus();
  await both(page, 'serial');
  await page.screenshot({ path: join(REPO_ROOT, 'docs', 'screenshot.png') });

  await row.getByRole('button', { name: 'Open VNC console' }).click();
  const vnc = page.getByRole('tabpanel', { name: 'lab-1 — VNC' });
  await vnc.locator('.vnc-tab[data-state="connected"]').waitFor({ timeout: 30_000 });
  await page.waitForTimeout(1500);
  await both(page, 'vnc');

  await row.getByRole('button', { name: 'Delete console' }).click();
  await page.getByRole('dialog', { name: 'Delete console?' }).waitFor();
  await both(page, 'confirm');
  await page.getByRole('dialog', { name: 'Delete console?' }).getByRole('button', { name: 'Cancel' }).click();

  await row.locator('summary[aria-label="Power actions for lab-1"]').click();
  await both(page, 'power-menu');
  await row.locator('summary[aria-label="Power actions for lab-1"]').click();

  // Someone else's key on lab-2's console: opening it asks first (docs/replace-key-dialog.png).
  const relayUrl = /Embedded relay running at (\S+)/.exec((await page.locator('header [role="status"]').textContent()) ?? '')![1]!;
  const tokenEntry = (await keytar.findCredentials('lifeline')).find((c) => c.account.startsWith('token:'))!;
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'someone-else', '-f', join(tmp.path, 'theirs')]);
  const keyData = readFileSync(`${join(tmp.path, 'theirs')}.pub`, 'utf8').trim();
  await fetch(`${relayUrl}/v1/virtualMachines/lab-2/console`, { method: 'PUT', headers: { authorization: `Bearer ${tokenEntry.password}`, 'content-type': 'application/json' }, body: JSON.stringify({ enabled: true, sshPublicKey: { keyData } }) });
  const lab2 = page.getByRole('list', { name: 'Virtual machines' }).getByRole('listitem', { name: 'lab-2', exact: true });
  await waitUntil(async () => /another key/.test((await lab2.textContent()) ?? ''), 15_000, 'lab-2 with another key');
  await lab2.getByRole('button', { name: 'Open serial console' }).click();
  const replace = page.getByRole('dialog', { name: 'Replace console key?' });
  await replace.waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(REPO_ROOT, 'docs', 'replace-key-dialog.png'), clip: { x: 320, y: 230, width: 800, height: 400 } });
  await replace.getByRole('button', { name: 'Cancel' }).click();

  // A small window (1024x640): the same layout, toolbars reduced to icons.
  await page.getByRole('tab', { name: 'lab-1 — serial' }).click();
  await page.setViewportSize({ width: 1024, height: 640 });
  await both(page, 'compact');
  await page.setViewportSize({ width: 1440, height: 860 });

  // A remote relay over https with a self-signed certificate: the fingerprint to confirm.
  await page.getByRole('button', { name: 'Add a relay' }).click();
  const add = page.getByRole('dialog', { name: 'Add relay' });
  await add.getByLabel('Relay name').fill('Production');
  await add.getByLabel('Relay URL').fill(secure.apiUrl);
  await add.getByLabel('Relay API token').fill(secure.token);
  await add.getByRole('button', { name: 'Add relay' }).click();
  await add.getByLabel('Certificate fingerprint', { exact: true }).waitFor({ timeout: 15_000 });
  await both(page, 'tls-confirm');
  await add.getByRole('button', { name: 'Trust and add relay' }).click();
  await add.waitFor({ state: 'detached', timeout: 15_000 });

  // The same relay with a token limited to consoles:read on web-*: what it cannot do is disabled, and says why.
  const ca = readFileSync(join(secureDir, 'tls.crt'));
  const viewer = await httpsApi(secure.apiUrl, secure.token, ca)('POST', '/v1/tokens', { name: 'viewer', scopes: ['consoles:read'], virtualMachines: ['web-*'] });
  const production = page.getByRole('list', { name: 'Relays' }).getByRole('listitem', { name: 'Production' });
  await production.getByRole('button', { name: 'Edit relay Production' }).click();
  const edit = page.getByRole('dialog', { name: 'Edit relay Production' });
  await edit.getByLabel('New API token for Production').fill(viewer.body.token);
  await edit.getByRole('button', { name: 'Save relay' }).click();
  await edit.waitFor({ state: 'detached', timeout: 15_000 });
  await production.getByText('token viewer').waitFor({ timeout: 15_000 });
  await page.getByRole('list', { name: 'Virtual machines' }).getByRole('listitem', { name: 'web-1' }).getByRole('button', { name: 'Open serial console' }).hover();
  await page.waitForTimeout(1200);
  await both(page, 'limited-token');
} finally {
  await runCleanups([chromium.close, web.stop, () => secure?.stop(), lab.down, tmp.dispose]);
}
