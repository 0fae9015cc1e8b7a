import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import keytar from 'keytar';
import type { Page } from 'playwright-core';
import { runInSerialTab, vmRow } from '../helpers/app-page.js';
import { launchChromium } from '../helpers/browser.js';
import { startBrowserMode, type BrowserMode } from '../helpers/browser-mode.js';
import { runCleanups } from '../helpers/cleanup.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { differingPixels, readPpm, type Picture } from '../helpers/ppm.js';
import { qmp } from '../helpers/qmp.js';
import { RELAY_BIN, testConfig } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/** How long the recorded session runs (the seek check is on a 3-minute recording). */
const SESSION_SECONDS = Number(process.env.LIFELINE_VNC_RECORDING_SECONDS ?? 180);
const TYPE_EVERY_S = 15;
const SEGMENT_SECONDS = 20;

/** The share of pixels that differ between two pictures of the same size. */
const differing = (a: Picture, b: Picture): number => differingPixels(a, b) / (a.width * a.height);

/** The player's noVNC canvas as RGB. */
async function playedScreen(page: Page): Promise<Picture> {
  const { width, height, data } = await page.evaluate(() => {
    const canvas = document.querySelector('.vnc-playback canvas') as HTMLCanvasElement;
    const rgba = canvas.getContext('2d', { willReadFrequently: true })!.getImageData(0, 0, canvas.width, canvas.height).data;
    let text = '';
    for (let i = 0; i < rgba.length; i += 4) text += String.fromCharCode(rgba[i]!, rgba[i + 1]!, rgba[i + 2]!);
    return { width: canvas.width, height: canvas.height, data: btoa(text) };
  });
  return { width, height, rgb: Buffer.from(data, 'base64') };
}

/*
 * A VNC session recorded by the relay and played back in the desktop's Recordings view (noVNC in
 * Chromium, browser mode, the real Secret Service): the guest's screen as QEMU itself rendered it
 * (QMP screendump) in the middle and at the end of a 3-minute session is what playback shows at
 * those moments; seeking to the middle takes under 2 s; the seal matches the audit trail and a
 * flipped byte is named by `recordings verify`.
 */
describe('desktop: a recorded VNC session played back in noVNC', () => {
  let lab: Lab;
  let web: BrowserMode;
  let page: Page;
  let closeBrowser: (() => Promise<void>) | undefined;
  let configPath: string;
  const tmp = tempDir('vnc-recording');
  let middle: { picture: Picture; at: number } | undefined;
  let last: Picture | undefined;

  const screendump = async (name: string): Promise<Picture> => {
    const file = join(tmp.path, `${name}.ppm`);
    await qmp(join(lab.vmDir('lab-1'), 'qmp.sock'), 'screendump', { filename: file });
    return readPpm(file);
  };
  const relayApi = async (path: string, init: RequestInit = {}): Promise<any> => {
    const relayId = (await keytar.findCredentials('lifeline')).map((c) => c.account).find((a) => a.startsWith('token:'))!.slice('token:'.length);
    const token = await keytar.getPassword('lifeline', `token:${relayId}`);
    const relayUrl = /Embedded relay running at (\S+)/.exec((await page.getByRole('status').first().textContent()) ?? '')![1]!;
    const response = await fetch(`${relayUrl}${path}`, { ...init, headers: { authorization: `Bearer ${token}` } });
    return response.json();
  };

  before(async () => {
    lab = startLab(1);
    // The relay is given the VM without its QMP socket (it would hold QEMU's one QMP connection): the test takes the screendumps.
    configPath = testConfig(lab.configPath, join(tmp.path, 'relay-data'), { recording: { vnc: 'on', serial: 'on', checkpointInterval: '5s', vncSegment: `${SEGMENT_SECONDS}s` } }, ({ qmp: _qmp, ...vm }) => vm);
    web = await startBrowserMode(['--relay-config', configPath, '--data-dir', join(tmp.path, 'app')]);
    const chromium = await launchChromium();
    closeBrowser = chromium.close;
    page = await chromium.browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    await page.goto(web.url);
  });
  after(() => runCleanups([() => closeBrowser?.(), () => web?.stop(), () => lab?.down(), tmp.dispose]));

  test(`a ${SESSION_SECONDS} s VNC session with typing is recorded in segments that each start with a full frame, sealed`, { timeout: SESSION_SECONDS * 1000 + 180_000 }, async () => {
    await vmRow(page, 'lab-1').waitFor({ timeout: 60_000 });
    // Keys typed before tty1's shell runs are lost: the guest is up once its serial console has printed a prompt.
    await waitUntil(() => /lab-1:[^\n]*# /.test(readFileSync(join(lab.vmDir('lab-1'), 'serial.log'), 'latin1')), 90_000, 'the guest booted');
    // The serial console is open (and recorded) throughout: playback shows it beside the screen.
    await runInSerialTab(page, 'lab-1', 'echo serial-side-$((6*7))', /serial-side-42/);
    await vmRow(page, 'lab-1').getByRole('button', { name: 'Open VNC console' }).click();
    const panel = page.getByRole('tabpanel', { name: 'lab-1 — VNC' });
    await panel.locator('[data-state="connected"]').waitFor({ timeout: 30_000 });
    // The tab asks the relay about its screen (its SSH forward carries no notices): the Recorded badge.
    await waitUntil(async () => panel.getByRole('group', { name: 'Sharing' }).getByText('Recorded', { exact: true }).isVisible(), 15_000, 'the Recorded badge on the VNC tab');
    const canvas = panel.locator('canvas');
    const type = async (text: string): Promise<void> => {
      await canvas.click();
      await page.keyboard.type(text);
      await page.keyboard.press('Enter');
    };
    const started = Date.now();
    for (let step = 0; Date.now() - started < SESSION_SECONDS * 1000; step++) {
      await type(`echo step-${step} of the session`);
      const elapsed = (Date.now() - started) / 1000;
      if (!middle && elapsed >= SESSION_SECONDS / 2 - TYPE_EVERY_S) {
        // Halfway, in a quiet moment: the screen 5 s after the last keys, 5 s before the next.
        await sleep(5000);
        middle = { picture: await screendump('middle'), at: Date.now() };
        await sleep(TYPE_EVERY_S * 1000 - 5000);
      } else {
        await sleep(TYPE_EVERY_S * 1000);
      }
    }
    // One more command after the middle, so the last frame differs from it.
    await type('echo the-end');
    await sleep(3000);
    last = await screendump('last');
    await page.getByRole('button', { name: 'Close lab-1 — VNC', exact: true }).click();
    await page.getByRole('button', { name: 'Close lab-1 — serial', exact: true }).click();

    let recording: any;
    await waitUntil(async () => {
      recording = ((await relayApi('/v1/recordings?vm=lab-1')).value as any[]).find((r) => r.kind === 'vnc');
      return recording?.complete === true;
    }, 15_000, 'the VNC recording sealed once the session ended');
    assert.equal(recording.screen.width, last.width);
    assert.equal(recording.participants.length, 1);
    const segments = recording.segments as Array<{ name: string; start: number; end: number; bytes: number }>;
    console.error(`${segments.length} segments, ${(segments.reduce((sum, s) => sum + s.bytes, 0) / 2 ** 20).toFixed(1)} MiB for ${SESSION_SECONDS} s (a full frame of ${recording.screen.width}×${recording.screen.height} is ${((recording.screen.width * recording.screen.height * 4) / 2 ** 20).toFixed(2)} MiB)`);
    assert.ok(segments.length >= Math.floor(SESSION_SECONDS / SEGMENT_SECONDS) - 1, `${segments.length} segments`);
    segments.forEach((segment, i) => {
      assert.equal(segment.name, `vnc-${String(i).padStart(4, '0')}.rfb`);
      if (i > 0) assert.ok(segment.start >= segments[i - 1]!.end - 0.001, 'segments follow each other');
    });
    // The seal is in the audit trail, with the manifest's SHA-256.
    const dir = join(tmp.path, 'relay-data', 'recordings', recording.id);
    const sealed = ((await relayApi('/v1/auditEvents?limit=1000')).value as any[]).find((event) => event.type === 'recording.sealed' && event.recording === recording.id);
    assert.equal(sealed?.manifestSha256, createHash('sha256').update(readFileSync(join(dir, 'manifest.json'))).digest('hex'));
  });

  test('playback in the Recordings view: the middle and the last frame are the VM\'s screen then (under 1 % of pixels differ); seeking to the middle takes under 2 s', { timeout: 120_000 }, async () => {
    assert.ok(middle && last, 'the recording test ran');
    await vmRow(page, 'lab-1').getByRole('button', { name: 'Recordings of lab-1' }).click();
    const dialog = page.getByRole('dialog', { name: 'Recordings of lab-1' });
    await dialog.getByRole('button', { name: /^Play the screen recording of / }).first().click();
    const opening = performance.now();
    const player = dialog.locator('.cast-player[data-state="ready"]');
    await player.waitFor({ timeout: 30_000 });
    console.error(`the VNC recording (and the serial one beside it) loaded and ready in ${(performance.now() - opening).toFixed(0)} ms`);
    // Recording time on the slider: idle time not skipped.
    await dialog.getByRole('checkbox', { name: 'Skip idle time' }).uncheck();
    const recording = ((await relayApi('/v1/recordings?vm=lab-1')).value as any[]).find((r) => r.kind === 'vnc');
    const slider = player.getByRole('slider', { name: 'Position in the recording' });

    const middleTime = (middle.at - Date.parse(recording.startedAt)) / 1000;
    const seekStarted = performance.now();
    await slider.fill(String(middleTime));
    await page.waitForFunction((at) => Number(document.querySelector('.cast-player')!.getAttribute('data-position')) >= at - 5, middleTime);
    const atMiddle = await playedScreen(page);
    const seekMs = performance.now() - seekStarted;
    const middleDiff = differing(atMiddle, middle.picture);
    console.error(`seek to ${middleTime.toFixed(1)} s of ${Number(await slider.getAttribute('max')).toFixed(1)} s: ${seekMs.toFixed(0)} ms; ${(middleDiff * 100).toFixed(3)} % of pixels differ from the screendump`);
    assert.ok(seekMs < 2000, `seeking to the middle took ${seekMs.toFixed(0)} ms`);
    assert.ok(middleDiff < 0.01, `${(middleDiff * 100).toFixed(2)} % of pixels differ in the middle`);

    await slider.fill((await slider.getAttribute('max')) ?? '0');
    await sleep(200);
    // The serial recording of the same time plays beside it, on the same timeline.
    await waitUntil(async () => /serial-side-42/.test((await player.locator('.serial-beside .xterm-rows').textContent()) ?? ''), 5000, 'the serial console at the end');
    const lastDiff = differing(await playedScreen(page), last);
    assert.ok(lastDiff < 0.01, `${(lastDiff * 100).toFixed(2)} % of pixels differ at the end`);
    // And the two moments are different screens (the comparison is not blind).
    assert.ok(differing(middle.picture, last) > 0.005, 'the screen changed between the middle and the end');

    if (process.env.LIFELINE_SCREENSHOTS) {
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await sleep(300);
        await page.screenshot({ path: join(process.env.LIFELINE_SCREENSHOTS, `recordings-vnc-${scheme}.png`) });
      }
      await page.emulateMedia({ colorScheme: 'light' });
    }
    await dialog.getByRole('button', { name: 'Close' }).first().click();
  });

  test('a flipped byte in a VNC segment: recordings verify names the segment', async () => {
    const recording = ((await relayApi('/v1/recordings?vm=lab-1')).value as any[]).find((r) => r.kind === 'vnc');
    const ok = spawnSync(process.execPath, [RELAY_BIN, 'recordings', 'verify', '--config', configPath, '--id', recording.id], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, new RegExp(`^ok ${recording.id} \\(lab-1 vnc`, 'm'));
    const file = join(tmp.path, 'relay-data', 'recordings', recording.id, 'vnc-0001.rfb');
    const bytes = readFileSync(file);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0x01;
    writeFileSync(file, bytes);
    const failed = spawnSync(process.execPath, [RELAY_BIN, 'recordings', 'verify', '--config', configPath, '--id', recording.id], { encoding: 'utf8' });
    assert.equal(failed.status, 1);
    assert.match(failed.stdout, /FAILED .*vnc-0001\.rfb: SHA-256 [0-9a-f]{64} does not match/);
  });
});
