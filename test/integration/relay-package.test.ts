import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { startFakeConsole } from '../bench/fake-console.js';
import { runCleanups } from '../helpers/cleanup.js';
import { REPO_ROOT, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';

/**
 * The relay as someone installs it from its package: `npm pack`, installed into an empty folder,
 * then `lifeline-relay serve` from that install serves a token page and noVNC's modules.
 */
describe('the packed relay package', () => {
  const tmp = tempDir('relay-pack');
  let relay: RelayProcess | undefined;
  const cleanups: Array<() => unknown> = [];
  after(() => runCleanups([() => relay?.stop(), ...cleanups, tmp.dispose]));

  test('npm pack holds what serve needs, and an install of it serves a VNC token page', async () => {
    execFileSync('npm', ['pack', '--pack-destination', tmp.path], { cwd: join(REPO_ROOT, 'relay'), stdio: ['ignore', 'ignore', 'inherit'] });
    const tarball = readdirSync(tmp.path).find((name) => name.endsWith('.tgz'))!;
    const files = execFileSync('tar', ['tzf', join(tmp.path, tarball)], { encoding: 'utf8' }).split('\n');
    for (const needed of ['package/bin/lifeline-relay.js', 'package/dist/cli.js', 'package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/api/client-types.d.ts', 'package/assets/vnc/index.html', 'package/assets/vnc/vnc.js', 'package/assets/vnc/vnc.css']) {
      assert.ok(files.includes(needed), `${needed} is in the package`);
    }
    assert.deepEqual(files.filter((file) => /\.test\./.test(file)), [], 'no tests in the package');

    // Installed as a user would (from the npm cache the repository's own install filled); native
    // builds are skipped and better-sqlite3's addon is taken from the repository's build of the same version.
    const project = join(tmp.path, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'relay-user', private: true, type: 'module' }));
    const version = (dir: string): string => (JSON.parse(readFileSync(join(dir, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8')) as { version: string }).version;
    // better-sqlite3 pinned to the repository's version (within the relay's range), so its built addon fits.
    execFileSync('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', join(tmp.path, tarball), `better-sqlite3@${version(REPO_ROOT)}`], { cwd: project, stdio: ['ignore', 'ignore', 'inherit'] });
    assert.equal(version(project), version(REPO_ROOT), 'the same better-sqlite3 as the repository builds');
    cpSync(join(REPO_ROOT, 'node_modules', 'better-sqlite3', 'build'), join(project, 'node_modules', 'better-sqlite3', 'build'), { recursive: true });

    const exported = execFileSync(process.execPath, ['--input-type=module', '-e', "const m = await import('@lifeline/relay'); console.log(Object.keys(m).sort().join(','))"], { cwd: project, encoding: 'utf8' }).trim();
    assert.match(exported, /createRelay/);
    assert.match(exported, /loadConfigFile/);

    const screen = await startFakeConsole(join(tmp.path, 'vnc.sock'), 0, true);
    cleanups.push(() => screen.close());
    const dataDir = join(tmp.path, 'data');
    const configPath = join(tmp.path, 'relay.json');
    writeFileSync(configPath, JSON.stringify({ dataDir, api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, virtualMachines: [{ name: 'vm1', vnc: screen.path }] }));
    relay = await startRelay(configPath, dataDir, {}, [], join(project, 'node_modules', '@lifeline', 'relay', 'bin', 'lifeline-relay.js'));
    const keygen = join(tmp.path, 'key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keygen]);
    const put = await relay.api('PUT', '/v1/virtualMachines/vm1/console', { enabled: true, sshPublicKey: { keyData: readFileSync(`${keygen}.pub`, 'utf8').trim() } });
    assert.equal(put.status, 201);
    const minted = await relay.api('POST', '/v1/virtualMachines/vm1/vncTokens');
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const page = await fetch(minted.body.url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /src="\/lifeline\/vnc\.js"/);
    const rfb = await fetch(new URL('/novnc/core/rfb.js', minted.body.url));
    assert.equal(rfb.status, 200, 'noVNC modules are served from the installed package');
  });
});
