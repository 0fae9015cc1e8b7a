import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { startLabRelay, type LabRelay } from '../helpers/lab-relay.js';
import { waitForPort } from '../bench/clients.js';
import { OpenSshSession, spawnLocalForward } from '../helpers/openssh.js';
import { freeVncPort, gvnccapture, pngSize } from '../helpers/vnc-client.js';
import { differingPixels, readPpm, type Picture } from '../helpers/ppm.js';
import { qmp } from '../helpers/qmp.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * Two noVNC pages in Chromium on one lab VM, one of them observing. The observer page is made to
 * send input anyway (its view-only switch turned off by script, as a modified client would): the
 * relay must drop it. What the VM shows is read from QEMU itself (QMP screendump), not from a viewer.
 */
describe('VNC observers: two noVNC pages on one VM, one read-only by the relay', () => {
  let env: LabRelay;
  let close: (() => Promise<void>) | undefined;
  let shot = 0;

  const screendump = async (): Promise<Picture> => {
    const file = join(env.dir, `screen-${++shot}.ppm`);
    await qmp(join(env.lab.vmDir('lab-1'), 'qmp.sock'), 'screendump', { filename: file });
    return readPpm(file);
  };
  const mint = async (mode?: 'observe'): Promise<{ status: number; body: any }> => env.relay.api('POST', `/v1/virtualMachines/lab-1/vncTokens${mode ? `?mode=${mode}` : ''}`);
  const dropped = async (): Promise<number> => {
    const response = await fetch(`${env.relay.apiUrl}/metrics`, { headers: { authorization: `Bearer ${env.relay.token}` } });
    const text = await response.text();
    return [...text.matchAll(/^lifeline_vnc_observer_messages_dropped_total\{message="(\w+)"\} (\d+)/gm)].reduce((sum, match) => sum + Number(match[2]), 0);
  };
  const typeOn = async (page: Page, text: string): Promise<void> => {
    await page.locator('#screen canvas').click();
    await page.keyboard.type(text);
    await page.keyboard.press('Enter');
  };

  before(async () => {
    // The relay keeps QEMU's one QMP connection when it has one: the VM is given without it, so the test can take screendumps.
    // Recorded too: the recorder's own connection to the screen changes nothing for the viewers, and the pages say it.
    env = await startLabRelay('vnc-observe', { recording: { vnc: 'on' } }, ({ qmp: _qmp, ...vm }) => vm);
  });
  after(async () => {
    await close?.();
    await env?.dispose();
  });

  test('a token to observe is refused until the console allows observers; then its URL says mode=observe', async () => {
    const refused = await mint('observe');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'ObserversNotAllowed');
    assert.equal((await env.relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { allowObservers: true })).status, 200);
    const minted = await mint('observe');
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    assert.equal(minted.body.mode, 'observe');
    assert.match(minted.body.url, /\?token=[\w-]+&mode=observe$/);
    assert.equal((await env.relay.api('POST', '/v1/virtualMachines/lab-1/vncTokens?mode=steal')).status, 400);
  });

  test('input on the observer page leaves the screen unchanged and is counted as dropped; the controller page still types; nobody is displaced', async () => {
    const launched = await launchChromium();
    close = launched.close;
    const controller = await launched.browser.newPage();
    await controller.goto((await mint()).body.url);
    await controller.waitForFunction(() => document.body.dataset.state === 'connected', undefined, { timeout: 30_000 });
    const observer = await launched.browser.newPage();
    await observer.goto((await mint('observe')).body.url);
    await observer.waitForFunction(() => document.body.dataset.state === 'connected', undefined, { timeout: 30_000 });
    assert.equal(await observer.locator('#mode-badge').isVisible(), true, 'the page says it is observing');
    assert.match((await observer.locator('#status').textContent()) ?? '', /^Observing QEMU \(lab-1\)/);
    assert.equal(await observer.locator('#view-only').isDisabled(), true);
    if (process.env.LIFELINE_SCREENSHOTS) await observer.screenshot({ path: join(process.env.LIFELINE_SCREENSHOTS, 'vnc-observe.png') });
    const sessions = (await env.relay.api('GET', '/v1/sessions')).body.value as Array<{ kind: string; role: string }>;
    assert.deepEqual(sessions.filter((session) => session.kind === 'vnc').map((session) => session.role).sort(), ['controller', 'observer']);
    // Out of the RFB stream, each page is told: the controller of the observer's arrival, the observer of who is in control, both that it is recorded.
    const notices = (page: Page): Promise<string[]> => page.evaluate(() => (window as unknown as { lifelineNotices: string[] }).lifelineNotices);
    await controller.waitForFunction(() => (window as unknown as { lifelineNotices: string[] }).lifelineNotices.some((line) => / joined as an observer \(2 on this screen\)$/.test(line)), undefined, { timeout: 5000 });
    assert.ok((await notices(observer)).some((line) => /^also on this screen: session \w{8} \(127\.0\.0\.1 via the browser\), in control$/.test(line)), (await notices(observer)).join('\n'));
    for (const page of [controller, observer]) {
      assert.ok((await notices(page)).some((line) => /^this session is recorded \(recording \w{8}; docs\/recordings\.md\)$/.test(line)));
      assert.equal(await page.locator('#recorded-badge').isVisible(), true);
    }

    // A settled screen first: the guest booted (its serial console at a prompt; tty1's shell starts with it), then
    // tty1 at its prompt, nothing changing for 2 s in a row.
    const serial = new OpenSshSession({ port: env.relay.sshPort, user: env.user, key: env.key.privateKeyPath });
    serial.send('\r');
    await serial.waitFor(/lab-1:[^\n]*# /, 90_000);
    serial.close();
    await typeOn(controller, '');
    let before = await screendump();
    let stillFor = 0;
    for (let settled = false, tries = 0; !settled; tries++) {
      assert.ok(tries < 60, 'the screen settles within a minute');
      await sleep(1000);
      const next = await screendump();
      const quiet = differingPixels(before, next) <= 64;
      settled = quiet && stillFor > 0;
      stillFor = quiet ? stillFor + 1 : 0;
      before = next;
    }
    const droppedBefore = await dropped();
    await observer.evaluate(() => {
      (window as unknown as { lifelineRfb: { viewOnly: boolean } }).lifelineRfb.viewOnly = false;
    });
    await typeOn(observer, 'echo HACK from the observer');
    await observer.mouse.move(200, 200);
    await observer.mouse.down();
    await observer.mouse.up();
    await sleep(1500);
    const after = await screendump();
    // The text console's blinking cursor may be caught in either phase: a few dozen pixels at most.
    const observerChange = differingPixels(before, after);
    assert.ok(observerChange <= 64, `the observer's typing changed ${observerChange} pixels of the screen`);
    assert.ok((await dropped()) >= droppedBefore + 'echo HACK from the observer'.length, 'each key event was dropped and counted');

    // The same check sees the controller's typing: it is not blind.
    await typeOn(controller, 'echo typed by the controller');
    await sleep(1500);
    const controllerChange = differingPixels(after, await screendump());
    assert.ok(controllerChange > 500, `the controller's typing changed ${controllerChange} pixels`);
    assert.equal(await controller.evaluate(() => document.body.dataset.state), 'connected');
    assert.equal(await observer.evaluate(() => document.body.dataset.state), 'connected');

    // The same read-only view over SSH (ssh -L …:vnc-observe:5900): gvnccapture gets a picture, nobody is displaced.
    const port = await freeVncPort();
    const forward = spawnLocalForward({ port: env.relay.sshPort, user: env.user, key: env.key.privateKeyPath, localPort: port, destination: 'vnc-observe:5900' });
    try {
      await waitForPort(port);
      const file = join(env.dir, 'observe-forward.png');
      const capture = await gvnccapture(port, file);
      assert.equal(capture.status, 0, capture.output);
      const size = pngSize(file);
      assert.ok(size.width >= 640 && size.height >= 400, JSON.stringify(size));
    } finally {
      forward.kill('SIGKILL');
    }
    assert.equal(await controller.evaluate(() => document.body.dataset.state), 'connected', 'the SSH observer displaced nobody');

    // Observing off: the observer page is closed with the reason, the controller stays.
    assert.equal((await env.relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { allowObservers: false })).status, 200);
    await observer.waitForFunction(() => /no longer allows observers/.test(document.getElementById('status')!.textContent ?? ''), undefined, { timeout: 5000 });
    assert.equal(await controller.evaluate(() => document.body.dataset.state), 'connected');
    await controller.waitForFunction(() => (window as unknown as { lifelineNotices: string[] }).lifelineNotices.some((line) => / left \(1 on this screen\)$/.test(line)), undefined, { timeout: 5000 });
    // The recording has every viewer as a participant (the SSH observer too), sealed once the last left.
    await controller.close();
    await waitUntil(async () => ((await env.relay.api('GET', '/v1/recordings')).body.value as Array<{ kind: string; complete: boolean }>).some((r) => r.kind === 'vnc' && r.complete), 10_000, 'the VNC recording sealed');
    const recording = ((await env.relay.api('GET', '/v1/recordings')).body.value as Array<{ kind: string; participants: Array<{ role: string }> }>).find((r) => r.kind === 'vnc')!;
    // The observer page, and the SSH forward's viewer (gvnccapture may connect more than once).
    const roles = recording.participants.map((p) => p.role);
    assert.equal(roles.filter((role) => role === 'controller').length, 1);
    assert.ok(roles.filter((role) => role === 'observer').length >= 2, roles.join(', '));
  });
});
