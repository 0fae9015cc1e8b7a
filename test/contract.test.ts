import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DESKTOP_API_METHODS, type DesktopApi } from '../preload/contract.js';
import { dispatch, InvalidCallError, METHOD_ARGUMENTS } from '../main/services/api-dispatch.js';
import { apiProxy } from '../renderer/src/api-proxy.js';
import { REPO_ROOT } from './helpers/relay-process.js';

/** A DesktopApi that records calls (pure logic: the dispatcher's validation, not the services). */
function recorder(): { api: DesktopApi; calls: Array<[string, unknown[]]> } {
  const calls: Array<[string, unknown[]]> = [];
  const api = Object.fromEntries(DESKTOP_API_METHODS.map((m) => [m, async (...args: unknown[]) => void calls.push([m, args])])) as unknown as DesktopApi;
  return { api, calls };
}

test('every contract method has an argument schema, and nothing else does', () => {
  assert.deepEqual(Object.keys(METHOD_ARGUMENTS).sort(), [...DESKTOP_API_METHODS].sort());
});

test('well-formed calls pass through to the service unchanged', async () => {
  const { api, calls } = recorder();
  await dispatch(api, 'openConsole', ['relay-1', 'lab-1', 'serial']);
  await dispatch(api, 'addRelay', [{ name: 'r', url: 'http://127.0.0.1:8440', token: 'llt_x' }]);
  await dispatch(api, 'resizeTerminal', ['tab', 120, 40]);
  assert.deepEqual(calls, [
    ['openConsole', ['relay-1', 'lab-1', 'serial']],
    ['addRelay', [{ name: 'r', url: 'http://127.0.0.1:8440', token: 'llt_x' }]],
    ['resizeTerminal', ['tab', 120, 40]],
  ]);
});

test('malformed calls are rejected before reaching the service', async () => {
  const { api, calls } = recorder();
  const bad: Array<[unknown, unknown]> = [
    ['constructor', []],
    ['__proto__', []],
    ['readFile', ['/etc/passwd']],
    [42, []],
    ['openConsole', ['relay-1', 'lab-1', 'ssh']],
    ['openConsole', ['relay-1', '../etc', 'serial']],
    ['openConsole', ['relay-1', 'lab-1']],
    ['openConsole', 'relay-1'],
    ['addRelay', [{ name: 'r', url: 'http://x', token: 't', privateKey: 'steal' }]],
    ['resizeTerminal', ['tab', -1, 40]],
    ['resizeTerminal', ['tab', 1e9, 40]],
    ['setAutoRenew', ['yes']],
    ['createEndpoint', ['relay-1', { name: 'ops', allowedSourcePrefixes: 'any' }]],
  ];
  for (const [method, args] of bad) {
    await assert.rejects(dispatch(api, method, args), InvalidCallError, `${String(method)} ${JSON.stringify(args)}`);
  }
  assert.deepEqual(calls, []);
});

test('the renderer side of both transports forwards exactly the method and arguments', async () => {
  const seen: Array<[string, unknown[]]> = [];
  const api = apiProxy(async (method, args) => {
    seen.push([method, args]);
    return 'ok';
  });
  for (const method of DESKTOP_API_METHODS) {
    assert.equal(typeof api[method], 'function', method);
  }
  assert.equal(await api.openConsole('r', 'lab-1', 'vnc'), 'ok');
  assert.deepEqual(seen, [['openConsole', ['r', 'lab-1', 'vnc']]]);
});

test('the preload exposes only call, onEvent and openStream, over the contract IPC channel names', () => {
  const source = readFileSync(join(REPO_ROOT, 'preload', 'index.ts'), 'utf8');
  assert.match(source, /contextBridge\.exposeInMainWorld\('lifelinePreload', api\)/);
  const exposed = [...source.matchAll(/^ {2}(\w+)(?:\(|:)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(exposed, ['call', 'onEvent', 'openStream']);
  assert.doesNotMatch(source, /ipcRenderer\.(send|invoke)\('/, 'channel names come from the contract');
});
