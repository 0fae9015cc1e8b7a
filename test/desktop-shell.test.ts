import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { applicationMenuTemplate, type MenuItemTemplate } from '../main/services/app-menu.js';
import { acquireInstanceLock, AlreadyRunningError } from '../main/services/instance-lock.js';
import { isRendererPage } from '../main/services/renderer-page.js';
import { EmbeddedRelay } from '../main/services/embedded-relay.js';
import { tempDir } from './helpers/temp.js';

const tmp = tempDir('shell');
after(() => tmp.dispose());

test('the IPC sender check compares file paths, on POSIX and on Windows', () => {
  const linux = '/opt/Lifeline/resources/app.asar/renderer/dist/index.html';
  assert.equal(isRendererPage('file:///opt/Lifeline/resources/app.asar/renderer/dist/index.html', linux, 'linux'), true);
  assert.equal(isRendererPage('file:///opt/Lifeline/resources/app.asar/renderer/dist/../dist/index.html', linux, 'linux'), true);
  const spaced = '/home/a b/Lifeline/renderer/dist/index.html';
  assert.equal(isRendererPage('file:///home/a%20b/Lifeline/renderer/dist/index.html', spaced, 'linux'), true);
  const windows = 'C:\\Program Files\\Lifeline\\resources\\app.asar\\renderer\\dist\\index.html';
  assert.equal(isRendererPage('file:///C:/Program%20Files/Lifeline/resources/app.asar/renderer/dist/index.html', windows, 'win32'), true);
  assert.equal(isRendererPage('file:///c:/program%20files/lifeline/resources/app.asar/renderer/dist/index.html', windows, 'win32'), true, 'Windows paths are case-insensitive');
  // Everything else is refused.
  for (const url of [
    'file:///C:/Program%20Files/Lifeline/resources/app.asar/renderer/dist/other.html',
    'file:///C:/Program%20Files/Lifeline/resources/app.asar/renderer/dist/index.html?x=1',
    'https://example.com/renderer/dist/index.html',
    'file://evil-host/C:/Program%20Files/Lifeline/resources/app.asar/renderer/dist/index.html',
    'not a url',
    '',
  ]) {
    assert.equal(isRendererPage(url, windows, 'win32'), false, url);
  }
  assert.equal(isRendererPage('file:///opt/Lifeline/renderer/dist/index.html#x', '/opt/Lifeline/renderer/dist/index.html', 'linux'), false);
});

test('the application menu has no Reload, on every platform', () => {
  const roles = (items: MenuItemTemplate[]): string[] => items.flatMap((item) => [...(item.role ? [item.role.toLowerCase()] : []), ...roles(item.submenu ?? [])]);
  for (const platform of ['linux', 'darwin', 'win32'] as const) {
    const all = roles(applicationMenuTemplate(platform));
    assert.ok(all.length > 5, platform);
    assert.deepEqual(all.filter((role) => role.includes('reload')), [], platform);
    assert.ok(all.includes('editmenu') && all.includes('togglefullscreen'), platform);
  }
});

test('one app per data folder: a second lock is refused while the first holder lives, and taken over after', async () => {
  const dir = join(tmp.path, 'data');
  const release = acquireInstanceLock(dir);
  assert.throws(() => acquireInstanceLock(dir), AlreadyRunningError);
  release();
  release(); // idempotent
  assert.equal(existsSync(join(dir, 'instance.lock')), false);

  // A lock left by a process that is gone (kill -9, a crash) is taken over.
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  writeFileSync(join(dir, 'instance.lock'), `${child.pid}\n`);
  const again = acquireInstanceLock(dir);
  assert.equal(readFileSync(join(dir, 'instance.lock'), 'utf8').trim(), String(process.pid));
  again();

  // A live pid that is not a Lifeline (a recycled pid) does not hold the lock either.
  const sleeper = spawn('sleep', ['30']);
  try {
    writeFileSync(join(dir, 'instance.lock'), `${sleeper.pid}\n`);
    acquireInstanceLock(dir)();
  } finally {
    sleeper.kill();
  }
});

test('a relay child that misbehaves is a clear start failure, never an exception in main\'s event handlers', async () => {
  // Stands in for `node lifeline-relay.js …`: lab up names a config that does not exist; serve prints a broken ready
  // line (no longer read: readiness is a message) and sends a ready message without the API's address.
  const fake = join(tmp.path, 'fake-node.sh');
  const badReady = `process.send({ type: 'lifeline-relay.ready', endpoints: [] }); setTimeout(() => undefined, 5000)`;
  writeFileSync(fake, `#!/bin/sh\ncase "$2" in\n  lab) echo /nonexistent/relay.yaml ;;\n  serve) echo '{"msg":"relay ready", broken'; exec ${process.execPath} -e "${badReady}" ;;\nesac\n`, { mode: 0o755 });
  const statuses: string[] = [];
  const lab = new EmbeddedRelay({ dir: join(tmp.path, 'lab-app'), adminToken: 'llt_0123456789abcdefghij', onStatus: (s) => statuses.push(s.message), node: { command: fake, env: {} } });
  await assert.rejects(lab.start(), /lab up wrote no usable config/);
  await lab.stop();
  const configPath = join(tmp.path, 'relay.json');
  writeFileSync(configPath, '{}');
  const serve = new EmbeddedRelay({ dir: join(tmp.path, 'serve-app'), relayConfig: configPath, adminToken: 'llt_0123456789abcdefghij', onStatus: (s) => statuses.push(s.message), node: { command: fake, env: {} } });
  await assert.rejects(serve.start(), /unreadable ready message/);
  await serve.stop();
});
