import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpsAgent, createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { runInSerialTab } from '../helpers/app-page.js';
import { launchChromium } from '../helpers/browser.js';
import { startBrowserMode, type BrowserMode } from '../helpers/browser-mode.js';
import { runCleanups } from '../helpers/cleanup.js';
import { httpsApi, spkiHash } from '../helpers/https-api.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { ephemeralConfig, RELAY_BIN, startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';

/** `curl` as a user runs it; returns its exit code and output (body, or the error). */
function curl(args: string[]): { code: number | null; out: string } {
  const result = spawnSync('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8' });
  return { code: result.status, out: `${result.stdout}${result.stderr}` };
}

/**
 * TLS end to end: a relay with `api.tls: on` on loopback makes and keeps a self-signed
 * certificate; curl trusts it by file, plain HTTP is answered with a pointer to https; noVNC
 * opens over https:// and wss:// in Chromium pinned to the key; the desktop (browser mode)
 * pins it by fingerprint and refuses a replaced certificate, naming both.
 */
describe('TLS: self-signed certificate, fingerprint pinning, https/wss VNC', () => {
  let lab: Lab;
  let relay: RelayProcess;
  let apiPort: number;
  let config: string;
  let fingerprint: string;
  const tmp = tempDir('tls');
  const dataDir = join(tmp.path, 'relay-data');
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    lab = startLab(1);
    apiPort = await freePort();
    // A short API grace time, to see it close an idle TLS connection and spare an authenticated one.
    config = testConfig(lab.configPath, dataDir, { api: { listen: `127.0.0.1:${apiPort}`, tls: 'on', loginGraceTime: '3s' } });
    relay = await startRelay(config, dataDir);
  });

  after(() => runCleanups([...cleanups.reverse(), () => relay?.stop(), () => lab?.down(), tmp.dispose]));

  const cert = (): string => readFileSync(join(dataDir, 'tls.crt'), 'utf8');

  test('the relay makes an ECDSA P-256 certificate for its addresses, keeps its key 0600, and prints its fingerprint everywhere', async () => {
    assert.equal(relay.apiUrl, `https://127.0.0.1:${apiPort}`);
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-fingerprint', '-sha256', '-in', join(dataDir, 'tls.crt')], { encoding: 'utf8' });
    assert.match(text, /Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /X509v3 Subject Alternative Name:\s*\n\s*DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    assert.match(text, /TLS Web Server Authentication/);
    fingerprint = /sha256 Fingerprint=([0-9A-F:]+)/i.exec(text)![1]!;
    assert.equal((execFileSync('stat', ['-c', '%a', join(dataDir, 'tls.key')], { encoding: 'utf8' })).trim(), '600');

    const api = httpsApi(relay.apiUrl, relay.token, cert());
    const info = await api('GET', '/v1/relay');
    assert.equal(info.status, 200);
    assert.equal(info.body.tlsFingerprint, fingerprint, 'GET /v1/relay returns what openssl computes');
    assert.match(relay.output(), new RegExp(`"tlsFingerprint":"${fingerprint}"`), 'printed at start');

    const offline = execFileSync(process.execPath, [RELAY_BIN, 'info', '--config', config], { encoding: 'utf8' });
    assert.match(offline, new RegExp(`TLS certificate SHA-256\\s+${fingerprint}`));
    assert.match(offline, new RegExp(`relay id\\s+${info.body.id}`));
    assert.match(offline, new RegExp(`API URL\\s+https://127\\.0\\.0\\.1:${apiPort}`));
    assert.match(offline, new RegExp(`SSH host key\\s+${info.body.sshHostKeys[0].fingerprint.replace(/[+/]/g, '\\$&')}`));
    assert.match(offline, new RegExp(`admin token\\s+${join(dataDir, 'admin.token')}`));
    const json = JSON.parse(execFileSync(process.execPath, [RELAY_BIN, 'info', '--config', config, '--json'], { encoding: 'utf8' }));
    assert.equal(json.tls.fingerprint, fingerprint);
  });

  test('curl with the certificate as its CA gets in; without it, and over plain HTTP, it does not', () => {
    const caFile = join(tmp.path, 'ca.pem');
    writeFileSync(caFile, cert());
    const ok = curl(['--cacert', caFile, '-H', `Authorization: Bearer ${relay.token}`, `${relay.apiUrl}/v1/virtualMachines`]);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /"name":"lab-1"/);
    // Pinned by the public key as well (what --pinnedpubkey does), with verification off only to show the pin decides.
    const spki = spkiHash(cert());
    assert.equal(curl(['-k', '--pinnedpubkey', `sha256//${spki}`, `${relay.apiUrl}/healthz`]).code, 0);
    assert.equal(curl(['-k', '--pinnedpubkey', `sha256//${Buffer.alloc(32).toString('base64')}`, `${relay.apiUrl}/healthz`]).code, 90, 'a different key is refused');

    const untrusted = curl([`${relay.apiUrl}/healthz`]);
    assert.equal(untrusted.code, 60, `the system does not trust a self-signed certificate: ${untrusted.out}`);

    const plain = curl(['-i', `http://127.0.0.1:${apiPort}/v1/relay`]);
    assert.match(plain.out, /^HTTP\/1\.1 400/);
    assert.match(plain.out, /"code":"TlsRequired"/);
    assert.doesNotMatch(plain.out, /lab-1|sshHostKeys/, 'nothing of the API over plain HTTP');
  });

  test('over TLS, an idle connection is closed at api.loginGraceTime; an authenticated keep-alive connection outlives it', async () => {
    const ca = cert();
    const started = Date.now();
    const idle = tlsConnect({ host: '127.0.0.1', port: apiPort, ca, servername: 'localhost' });
    idle.on('error', () => undefined);
    const idleClosed = new Promise<number>((resolve) => idle.once('close', () => resolve(Date.now() - started)));
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca });
    const get = (): Promise<{ status: number; reused: boolean }> =>
      new Promise((resolve, reject) => {
        const request = httpsRequest(`${relay.apiUrl}/v1/relay`, { agent, headers: { authorization: `Bearer ${relay.token}` } }, (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode ?? 0, reused: request.reusedSocket }));
        });
        request.on('error', reject);
        request.end();
      });
    try {
      assert.equal((await get()).status, 200);
      const lived = await idleClosed;
      assert.ok(lived >= 2500 && lived < 5000, `the idle TLS connection was closed after ${lived} ms (grace 3 s)`);
      await sleep(500);
      const again = await get();
      assert.equal(again.status, 200);
      assert.ok(again.reused, 'the authenticated connection was kept past the grace time and used again');
      writeFileSync(join(tmp.path, 'metrics-ca.pem'), ca);
      const metrics = curl(['--cacert', join(tmp.path, 'metrics-ca.pem'), '-H', `Authorization: Bearer ${relay.token}`, `${relay.apiUrl}/metrics`]).out;
      assert.match(metrics, /lifeline_preauth_connections\{listener="api"\} 0/);
      assert.match(metrics, /lifeline_preauth_dropped_total\{listener="api",reason="grace-timeout"\} [1-9]/);
    } finally {
      agent.destroy();
      idle.destroy();
    }
  });

  test('the noVNC page opens over https:// in Chromium and its RFB stream runs over wss://', async () => {
    const api = httpsApi(relay.apiUrl, relay.token, cert());
    const key = execFileSync('bash', ['-c', `ssh-keygen -q -t ed25519 -N '' -f ${join(tmp.path, 'k')} && cat ${join(tmp.path, 'k')}.pub`], { encoding: 'utf8' }).trim();
    assert.equal((await api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key } })).status, 201);
    const minted = await api('POST', '/v1/virtualMachines/lab-1/vncTokens');
    assert.equal(minted.status, 201);
    assert.match(minted.body.url, /^https:\/\/127\.0\.0\.1:\d+\/\?token=/);
    const vncPort = new URL(minted.body.url).port;
    // Plain HTTP to the TLS VNC port is told to use https, and never reaches the VM.
    assert.match(curl(['-i', `http://127.0.0.1:${vncPort}/`]).out, /^HTTP\/1\.1 400[\s\S]*This port speaks TLS/);
    // TLS 1.2 renegotiation is refused on the VNC port (a client could otherwise loop handshakes at the relay's cost).
    const renegotiation = spawnSync('bash', ['-c', `(printf 'R\\n'; sleep 1) | timeout 10 openssl s_client -connect 127.0.0.1:${vncPort} -tls1_2 -state 2>&1`], { encoding: 'utf8' }).stdout;
    assert.match(renegotiation, /RENEGOTIATING/);
    assert.match(renegotiation, /alert read:warning:no renegotiation/);

    // Chromium trusts exactly this key and nothing else (no blanket certificate-error bypass).
    const { browser, close } = await launchChromium([`--ignore-certificate-errors-spki-list=${spkiHash(cert())}`]);
    cleanups.push(close);
    const page = await browser.newPage();
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    const response = await page.goto(minted.body.url);
    assert.equal(response?.status(), 200);
    await page.waitForFunction(() => document.body.dataset.state === 'connected', undefined, { timeout: 30_000 });
    assert.match((await page.locator('#status').textContent()) ?? '', /Connected to QEMU \(lab-1\)/);
    assert.equal(sockets.length, 1);
    assert.match(sockets[0]!, /^wss:\/\/127\.0\.0\.1:\d+\/\?token=/);
    const sessions = await api('GET', '/v1/sessions');
    assert.ok(sessions.body.value.some((s: { path: string; kind: string }) => s.path === 'websocket' && s.kind === 'vnc'));
    await close();
    // The desktop below makes its own console for lab-1.
    assert.equal((await api('DELETE', '/v1/virtualMachines/lab-1/console')).status, 204);
  });

  test('a CA-signed certificate is trusted through the system trust store with no pin; a pin still decides when one is kept', async () => {
    const ca = join(tmp.path, 'ca');
    const run = (command: string): void => void execFileSync('bash', ['-c', command], { cwd: tmp.path, stdio: 'ignore' });
    run(`mkdir -p ${ca} && cd ${ca} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=Test-CA -keyout ca.key -out ca.crt`);
    writeFileSync(join(ca, 'ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    run(`cd ${ca} && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout relay.key -out relay.csr && ` +
      'openssl x509 -req -in relay.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile ext -out relay.crt');
    const signed = ephemeralConfig(tmp.path, 'ca-signed', { api: { listen: '127.0.0.1:0', tls: { cert: join(ca, 'relay.crt'), key: join(ca, 'relay.key') } } });
    const other = await startRelay(signed.configPath, signed.dataDir);
    cleanups.push(() => other.stop());
    // The desktop's TLS client, with this CA as the system bundle (how a company CA is installed: SSL_CERT_FILE or /etc/ssl/certs).
    const { inspectCertificate, TrustStore } = await import('../../main/services/relay-tls.js');
    const { RelayApi } = await import('../../main/services/relay-api.js');
    const before = await inspectCertificate(other.apiUrl, new TrustStore());
    assert.equal(before.trusted, false, 'not trusted before the CA is installed');
    process.env.SSL_CERT_FILE = join(ca, 'ca.crt');
    // A trust store reads the bundle on first use: a new one sees the installed CA.
    const trust = new TrustStore();
    try {
      const certificate = await inspectCertificate(other.apiUrl, trust);
      assert.equal(certificate.trusted, true, certificate.untrustedBecause);
      assert.equal((await new RelayApi(other.apiUrl, other.token, undefined, trust).info()).tlsFingerprint, certificate.fingerprint, 'no pin needed');
      const wrongPin = Array.from({ length: 32 }, () => '00').join(':');
      await assert.rejects(new RelayApi(other.apiUrl, other.token, wrongPin, trust).info(), (error: Error & { code?: string }) =>
        error.code === 'TlsCertificateChanged' && error.message.includes(certificate.fingerprint) && error.message.includes(wrongPin));
      // An address the certificate does not name is not trusted, CA or not (the same certificate served on 127.0.0.2).
      const elsewhere = createHttpsServer({ cert: readFileSync(join(ca, 'relay.crt')), key: readFileSync(join(ca, 'relay.key')) });
      await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.2', resolve));
      try {
        const byName = await inspectCertificate(`https://127.0.0.2:${(elsewhere.address() as { port: number }).port}`, trust);
        assert.equal(byName.trusted, false);
        assert.equal(byName.untrustedBecause, 'the certificate is not for 127.0.0.2');
      } finally {
        elsewhere.close();
      }
    } finally {
      delete process.env.SSL_CERT_FILE;
    }
  });

  describe('the desktop (browser mode) pins the certificate', () => {
    let web: BrowserMode;
    let page: Page;
    let closeBrowser: (() => Promise<void>) | undefined;
    const relayRow = () => page.getByRole('list', { name: 'Relays' }).getByRole('listitem', { name: 'Secure relay' });

    before(async () => {
      // The app's embedded relay has no VMs here; the TLS relay is added as a remote one.
      const embedded = ephemeralConfig(tmp.path, 'embedded', {});
      web = await startBrowserMode(['--relay-config', embedded.configPath, '--data-dir', join(tmp.path, 'app')]);
      const chromium = await launchChromium();
      closeBrowser = chromium.close;
      page = await chromium.browser.newPage({ viewport: { width: 1400, height: 900 } });
      page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
      await page.goto(web.url);
    });

    after(() => runCleanups([() => closeBrowser?.(), () => web?.stop()]));

    test('adding the https:// relay shows its fingerprint to confirm; once trusted, its VMs open', async () => {
      await page.getByRole('button', { name: 'Add a relay' }).click();
      const dialog = page.getByRole('dialog', { name: 'Add relay' });
      await dialog.getByLabel('Relay name').fill('Secure relay');
      await dialog.getByLabel('Relay URL').fill(relay.apiUrl);
      await dialog.getByLabel('Relay API token').fill(relay.token);
      await dialog.getByRole('button', { name: 'Add relay' }).click();
      const shown = dialog.getByLabel('Certificate fingerprint', { exact: true });
      await shown.waitFor({ timeout: 15_000 });
      assert.equal(await shown.textContent(), fingerprint, 'the dialog shows the fingerprint lifeline-relay info prints');
      if (process.env.LIFELINE_SCREENSHOTS) await page.screenshot({ path: join(process.env.LIFELINE_SCREENSHOTS, 'tls-confirm.png') });
      await dialog.getByRole('button', { name: 'Trust and add relay' }).click();
      await dialog.waitFor({ state: 'detached', timeout: 15_000 });
      await relayRow().and(page.locator('[data-status="ok"]')).waitFor({ timeout: 15_000 });
      const settings = JSON.parse(readFileSync(join(tmp.path, 'app', 'settings.json'), 'utf8')) as { relays: Array<{ name: string; tlsFingerprint?: string }> };
      assert.equal(settings.relays.find((r) => r.name === 'Secure relay')?.tlsFingerprint, fingerprint, 'the fingerprint is pinned in the settings');
      try {
        await runInSerialTab(page, 'lab-1', 'uname -n', /lab-1/);
      } finally {
        if (process.env.LIFELINE_SCREENSHOTS) await page.screenshot({ path: join(process.env.LIFELINE_SCREENSHOTS, 'tls-added.png') });
      }
    });

    test('a pasted fingerprint that is not the presented one is refused, naming both', async () => {
      await page.getByRole('button', { name: 'Add a relay' }).click();
      const dialog = page.getByRole('dialog', { name: 'Add relay' });
      await dialog.getByLabel('Relay name').fill('Impostor');
      await dialog.getByLabel('Relay URL').fill(relay.apiUrl.replace('127.0.0.1', 'localhost'));
      await dialog.getByLabel('Relay API token').fill(relay.token);
      const wrong = Array.from({ length: 32 }, () => 'AB').join(':');
      await dialog.getByLabel('TLS certificate fingerprint (optional)').fill(`TLS certificate SHA-256  ${wrong}`);
      await dialog.getByRole('button', { name: 'Add relay' }).click();
      const error = dialog.getByRole('alert');
      await error.waitFor({ timeout: 15_000 });
      const message = (await error.textContent()) ?? '';
      assert.match(message, new RegExp(fingerprint));
      assert.match(message, new RegExp(wrong));
      await dialog.getByRole('button', { name: 'Cancel' }).click();
    });

    test('with a limited token, the app disables what the token cannot do and says why', async () => {
      const api = httpsApi(relay.apiUrl, relay.token, cert());
      const viewer = await api('POST', '/v1/tokens', { name: 'viewer', scopes: ['consoles:read'], virtualMachines: ['lab-*'] });
      assert.equal(viewer.status, 201);
      await relayRow().getByRole('button', { name: 'Edit relay Secure relay' }).click();
      const dialog = page.getByRole('dialog', { name: 'Edit relay Secure relay' });
      await dialog.getByLabel('New API token for Secure relay').fill(viewer.body.token);
      await dialog.getByRole('button', { name: 'Save relay' }).click();
      await dialog.waitFor({ state: 'detached', timeout: 15_000 });
      await relayRow().getByText('token viewer: consoles:read · lab-*').waitFor({ timeout: 15_000 });
      const row = page.getByRole('list', { name: 'Virtual machines' }).getByRole('listitem', { name: 'lab-1' });
      const open = row.getByRole('button', { name: 'Open serial console' });
      await waitUntil(async () => open.isDisabled(), 15_000, 'the open button disabled');
      assert.match((await open.getAttribute('title')) ?? '', /lacks the "consoles:write" scope/);
      assert.equal(await row.locator('summary[aria-label="Power actions for lab-1"]').count(), 0, 'no power menu without the power scope');
      if (process.env.LIFELINE_SCREENSHOTS) await page.screenshot({ path: join(process.env.LIFELINE_SCREENSHOTS, 'tls-limited.png') });
      await relayRow().getByRole('button', { name: 'Endpoints of Secure relay' }).click();
      const endpoints = page.getByRole('dialog', { name: 'Private endpoints of Secure relay' });
      await endpoints.getByRole('note').filter({ hasText: 'lacks the "endpoints" scope' }).waitFor();
      assert.equal(await endpoints.getByRole('button', { name: 'Create endpoint' }).count(), 0);
      await page.keyboard.press('Escape');
    });

    test('after the relay\'s certificate is replaced, the app refuses it and names both fingerprints', async () => {
      await relay.stop();
      rmSync(join(dataDir, 'tls.crt'));
      rmSync(join(dataDir, 'tls.key'));
      relay = await startRelay(config, dataDir);
      const replaced = /"tlsFingerprint":"([0-9A-F:]+)"/.exec(relay.output())![1]!;
      assert.notEqual(replaced, fingerprint);
      const row = relayRow();
      await row.and(page.locator('[data-status="untrusted"]')).waitFor({ timeout: 20_000 });
      const text = (await row.textContent()) ?? '';
      assert.match(text, /TLS not trusted/);
      assert.match(text, new RegExp(`presents the TLS certificate ${replaced}, not the pinned ${fingerprint}`));
      // Nothing of the relay is used through it: its VMs leave the list.
      await page.getByRole('list', { name: 'Virtual machines' }).getByRole('listitem', { name: 'lab-1' }).waitFor({ state: 'detached', timeout: 15_000 });
    });
  });
});

/**
 * The TLS policy as a scanner sees it, on a relay of its own (a scan is a hundred failed
 * handshakes from one address, which the pre-auth limits answer, so it shares no relay with the
 * tests above): every TLS 1.2 suite OpenSSL knows is offered one at a time.
 */
describe('TLS policy: TLS 1.2 only with ECDHE and AEAD ciphers, TLS 1.3 as before', () => {
  let lab: Lab;
  let relay: RelayProcess;
  const tmp = tempDir('tls-policy');

  before(async () => {
    lab = startLab(1);
    const dataDir = join(tmp.path, 'relay-data');
    relay = await startRelay(testConfig(lab.configPath, dataDir, { api: { listen: '127.0.0.1:0', tls: 'on' } }), dataDir);
  });

  after(() => runCleanups([() => relay?.stop(), () => lab?.down(), tmp.dispose]));

  const sClient = (port: number, args: string[]): string =>
    spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { input: '', encoding: 'utf8', timeout: 10_000 }).stdout;

  test('no CBC, ARIA, CCM, DHE or static-RSA suite on the API or the VNC port; TLS 1.3 agrees what Node agreed before', async () => {
    const api = httpsApi(relay.apiUrl, relay.token, readFileSync(join(tmp.path, 'relay-data', 'tls.crt'), 'utf8'));
    const vncPort = (await api('GET', '/v1/relay')).body.endpoints[0].vncPort as number;
    const ports = [Number(new URL(relay.apiUrl).port), vncPort];
    for (const port of ports) {
      // OpenSSL's default TLS 1.3 offer, as before this policy: Node's first suite wins.
      assert.match(sClient(port, ['-tls1_3']), /New, TLSv1\.3, Cipher is TLS_AES_256_GCM_SHA384/, `TLS 1.3 on port ${port}`);
      assert.match(sClient(port, ['-tls1_2']), /New, TLSv1\.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256/, `TLS 1.2's preferred suite on port ${port}`);
    }
    const suites = execFileSync('openssl', ['ciphers', '-tls1_2', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'], { encoding: 'utf8' }).trim().split(':').filter((name) => !name.startsWith('TLS_'));
    assert.ok(suites.length > 50, `${suites.length} suites to try`);
    for (const port of ports) {
      const accepted = suites.filter((suite) => sClient(port, ['-tls1_2', '-cipher', `${suite}:@SECLEVEL=0`]).includes(`Cipher is ${suite}`));
      // The certificate is ECDSA, so of the ECDHE+AEAD set the ECDSA suites are the ones that can be agreed.
      assert.deepEqual(accepted.sort(), ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'], `port ${port}`);
    }
    // TLS 1.1 and older: refused.
    for (const port of ports) assert.doesNotMatch(sClient(port, ['-tls1_1', '-cipher', 'ALL:@SECLEVEL=0']), /Cipher is (?!\(NONE\))/, `TLS 1.1 on port ${port}`);
  });
});
