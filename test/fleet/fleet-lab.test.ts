import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runInSerialTab, vmRow } from '../helpers/app-page.js';
import { launchChromium } from '../helpers/browser.js';
import { startBrowserMode } from '../helpers/browser-mode.js';
import { FLEET_ADMIN_TOKEN, startFleet, type TestFleet } from '../helpers/fleet.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { generateKey, OpenSshSession, spawnLocalForward, type KeyPair } from '../helpers/openssh.js';
import { ephemeralConfig, testConfig } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { freeVncPort, gvnccapture, pngSize } from '../helpers/vnc-client.js';
import { waitUntil } from '../helpers/wait.js';

/* A real QEMU VM on a hypervisor agent, reached through the fleet's gateways by OpenSSH, gvnccapture and noVNC in Chromium. */
describe('a fleet serving a QEMU VM', () => {
  const dir = tempDir('fleet-lab');
  let lab: Lab;
  let fleet: TestFleet;
  let key: KeyPair;
  let accessId: string;
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    lab = startLab(1);
    fleet = await startFleet(dir.path);
    // The lab's VM config (sockets made absolute), as the agent on its hypervisor would list it.
    const { virtualMachines } = JSON.parse(readFileSync(testConfig(lab.configPath, join(dir.path, 'unused-data')), 'utf8'));
    await fleet.addAgent('hv-lab', { virtualMachines });
    await fleet.waitForAgent('hv-lab');
    key = generateKey(dir.path, 'owner');
    const put = await fleet.gateways[0]!.api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    accessId = put.body.virtualMachineAccessId;
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await fleet?.dispose();
    lab?.down();
    dir.dispose();
  });

  test('the serial console through a gateway: the guest\'s prompt, a command and its output, a serial break (~B), and QMP power actions', async () => {
    const vm = (await fleet.gateways[1]!.api('GET', '/v1/virtualMachines/lab-1')).body;
    assert.equal(vm.agent, 'hv-lab');
    assert.equal(vm.powerState, 'Running');
    assert.ok(vm.powerActions.includes('reset'), JSON.stringify(vm.powerActions));
    const session = new OpenSshSession({ port: fleet.gateways[1]!.sshPort, user: accessId, key: key.privateKeyPath });
    cleanups.push(() => session.close());
    session.send('\r');
    await session.waitFor(/lab-1:[^\n]*# /, 30_000);
    await session.run('echo fleet-$((6*7))', 'fleet-42');
    // OpenSSH's ~B: the break crosses the tunnel to the agent, which sends it on the telnet chardev (h: SysRq help).
    const from = session.output.length;
    session.send('\r~B');
    await new Promise((resolve) => setTimeout(resolve, 300));
    session.send('h');
    await session.waitFor(/sysrq: HELP/, 15_000, from);
    const nmi = await fleet.gateways[0]!.api('POST', '/v1/virtualMachines/lab-1/powerActions', { action: 'nmi' });
    assert.equal(nmi.status, 202, JSON.stringify(nmi.body));
    session.close();
  });

  test('noVNC in Chromium through gateway 2 with a token minted on gateway 1; the token is single-use across gateways', async () => {
    const minted = await fleet.gateways[0]!.api('POST', '/v1/virtualMachines/lab-1/vncTokens');
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    // The URL names gateway 1's endpoint; the same token on gateway 2's VNC port.
    const gateway2Vnc = (await fleet.gateways[1]!.api('GET', '/v1/relay')).body.endpoints.find((endpoint: { name: string }) => endpoint.name === 'default').vncPort;
    const url = new URL(minted.body.url);
    url.port = String(gateway2Vnc);
    const { browser, close } = await launchChromium();
    cleanups.push(close);
    const page = await browser.newPage();
    const response = await page.goto(url.toString());
    assert.equal(response?.status(), 200);
    await page.waitForFunction(() => document.body.dataset.state === 'connected', undefined, { timeout: 30_000 });
    await page.waitForFunction(() => /Connected to QEMU \(lab-1\)/.test(document.getElementById('status')!.textContent ?? ''), undefined, { timeout: 10_000 });
    // Used up: neither gateway takes it again.
    for (const gateway of fleet.gateways) {
      const port = (await gateway.api('GET', '/v1/relay')).body.endpoints.find((endpoint: { name: string }) => endpoint.name === 'default').vncPort;
      const again = await fetch(`http://127.0.0.1:${port}/?token=${minted.body.token}`);
      assert.equal(again.status, 403);
    }
    await close();
  });

  test('ssh -L 5901:vnc:5900 through a gateway: gvnccapture takes a screenshot of the VM', async () => {
    const port = await freeVncPort();
    const forward = spawnLocalForward({ port: fleet.gateways[0]!.sshPort, user: accessId, key: key.privateKeyPath, localPort: port, destination: 'vnc:5900' });
    cleanups.push(() => forward.kill('SIGKILL'));
    const file = join(dir.path, 'fleet.png');
    const capture = await waitUntil(async () => {
      const result = await gvnccapture(port, file);
      return result.status === 0 ? result : undefined;
    }, 30_000, 'a screenshot through the forward');
    assert.equal(capture.status, 0);
    const size = pngSize(file);
    assert.ok(size.width >= 640 && size.height >= 400 && size.bytes > 1000, JSON.stringify(size));
    forward.kill('SIGKILL');
  });

  test('the desktop (browser mode) adds a gateway like any relay, shows each VM with its agent, and opens its serial console', async () => {
    // The desktop makes the console with its own key (the one made above would ask before being replaced).
    assert.equal((await fleet.gateways[0]!.api('DELETE', '/v1/virtualMachines/lab-1/console')).status, 204);
    const embedded = ephemeralConfig(dir.path, 'desktop-embedded', {});
    const web = await startBrowserMode(['--relay-config', embedded.configPath, '--data-dir', join(dir.path, 'app')]);
    cleanups.push(() => web.stop());
    const { browser, close } = await launchChromium();
    cleanups.push(close);
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    await page.goto(web.url);
    await page.getByRole('button', { name: 'Add a relay' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add relay' });
    await dialog.getByLabel('Relay name').fill('Fleet');
    await dialog.getByLabel('Relay URL').fill(fleet.gateways[0]!.apiUrl);
    await dialog.getByLabel('Relay API token').fill(FLEET_ADMIN_TOKEN);
    await dialog.getByRole('button', { name: 'Add relay' }).click();
    await dialog.waitFor({ state: 'detached', timeout: 15_000 });
    const row = vmRow(page, 'lab-1');
    await row.waitFor({ timeout: 30_000 });
    const agent = row.locator('.agent');
    assert.equal((await agent.textContent())?.trim(), 'hv-lab');
    assert.equal(await agent.getAttribute('title'), 'on the hypervisor agent hv-lab');
    try {
      await runInSerialTab(page, 'lab-1', 'uname -n', /uname -n\s*lab-1/);
    } catch (error) {
      if (process.env.LIFELINE_SCREENSHOTS) await page.screenshot({ path: join(process.env.LIFELINE_SCREENSHOTS, 'fleet-failed.png') });
      throw error;
    }
    if (process.env.LIFELINE_SCREENSHOTS) {
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await page.waitForTimeout(400);
        await page.screenshot({ path: join(process.env.LIFELINE_SCREENSHOTS, `fleet-${scheme}.png`) });
      }
    }
    await close();
  });
});

