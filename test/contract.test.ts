import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Script } from 'node:vm';
import { DESKTOP_API_METHODS, IPC, type DesktopApi } from '../preload/contract.js';
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
    ['setTheme', ['purple']],
    ['powerAction', ['relay-1', 'lab-1', 'explode']],
    ['sendBreak', ['tab-1', 'hh']],
    ['createEndpoint', ['relay-1', { name: 'ops', allowedSourcePrefixes: 'any' }]],
  ];
  for (const [method, args] of bad) {
    await assert.rejects(dispatch(api, method, args), InvalidCallError, `${String(method)} ${JSON.stringify(args)}`);
  }
  assert.deepEqual(calls, []);
});

/** One well-formed call of every contract method (a new method without one fails type-checking here). */
const SAMPLE_CALLS = {
  getEmbeddedStatus: [],
  getSettings: [],
  getKeychainStatus: [],
  listRelays: [],
  inspectCertificate: ['https://127.0.0.1:8440'],
  addRelay: [{ name: 'r', url: 'http://127.0.0.1:8440', token: 'llt_x' }],
  updateRelay: [{ id: 'relay-1', name: 'renamed' }],
  removeRelay: ['relay-1'],
  listVms: [],
  renewConsole: ['relay-1', 'lab-1'],
  disableConsole: ['relay-1', 'lab-1'],
  deleteConsole: ['relay-1', 'lab-1'],
  powerAction: ['relay-1', 'lab-1', 'reset'],
  listEndpoints: ['relay-1'],
  createEndpoint: ['relay-1', { name: 'ops', ipAddress: '127.0.0.9', allowedSourcePrefixes: ['127.0.0.0/8'] }],
  deleteEndpoint: ['relay-1', 'ops'],
  openConsole: ['relay-1', 'lab-1', 'vnc', { replaceKey: 'SHA256:abc' }],
  reconnect: ['tab-1'],
  reconnectWithNewKey: ['tab-1'],
  closeTab: ['tab-1'],
  resizeTerminal: ['tab-1', 120, 40],
  sendBreak: ['tab-1', 'h'],
  consoleControl: ['tab-1', 'request'],
  listRecordings: ['relay-1', 'lab-1'],
  recordingCast: ['relay-1', '3f0c2a11-1b2c-4d5e-8f90-123456789abc'],
  recordingSegment: ['relay-1', '3f0c2a11-1b2c-4d5e-8f90-123456789abc', 'vnc-0003.rfb'],
  setAutoRenew: [false],
  setTheme: ['dark'],
} satisfies Record<(typeof DESKTOP_API_METHODS)[number], unknown[]>;

test("every contract method goes from the renderer's proxy through main's dispatcher to the service unchanged", async () => {
  const { api, calls } = recorder();
  // The renderer side of both transports, wired to main's side as the transports do.
  const rendererApi = apiProxy((method, args) => dispatch(api, method, args));
  for (const method of DESKTOP_API_METHODS) {
    const args = SAMPLE_CALLS[method] as unknown[];
    await (rendererApi[method] as (...values: unknown[]) => Promise<unknown>)(...args);
  }
  assert.deepEqual(calls, DESKTOP_API_METHODS.map((method) => [method, SAMPLE_CALLS[method]]));
  // A name outside the contract reaches main and is refused there, never run.
  await assert.rejects((rendererApi as unknown as Record<string, () => Promise<unknown>>).readFile!(), InvalidCallError);
  assert.equal(calls.length, DESKTOP_API_METHODS.length);
});

test('the preload is one CommonJS script that requires only electron and exposes call, onEvent and openStream', () => {
  // What Electron's sandbox does with a preload: run it as a classic script with a require that knows 'electron'.
  const source = readFileSync(join(REPO_ROOT, 'dist-desktop', 'preload', 'preload.cjs'), 'utf8');
  const script = new Script(source, { filename: 'preload.cjs' }); // an import/export statement would be a SyntaxError here
  const required: string[] = [];
  const exposed = new Map<string, Record<string, unknown>>();
  const invoked: unknown[][] = [];
  const electron = {
    contextBridge: { exposeInMainWorld: (key: string, value: Record<string, unknown>) => exposed.set(key, value) },
    ipcRenderer: { invoke: (...args: unknown[]) => invoked.push(args), on: () => undefined, removeListener: () => undefined, send: () => undefined },
  };
  const module = { exports: {} };
  script.runInNewContext({
    require: (name: string) => {
      required.push(name);
      if (name !== 'electron') throw new Error(`the preload required ${name}`);
      return electron;
    },
    module,
    exports: module.exports,
  });
  assert.deepEqual(required, ['electron']);
  assert.deepEqual([...exposed.keys()], ['lifelinePreload']);
  const api = exposed.get('lifelinePreload')!;
  assert.deepEqual(Object.keys(api).sort(), ['call', 'onEvent', 'openStream']);
  (api.call as (method: string, args: unknown) => void)('listVms', 'not an array');
  // (The argument list was made in the script's realm: compared as JSON.)
  assert.equal(JSON.stringify(invoked), JSON.stringify([[IPC.call, 'listVms', []]]), 'calls go over the contract channel with an argument list');
});
