import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ESLint } from 'eslint';
import { importsOf } from './helpers/imports.js';
import { REPO_ROOT } from './helpers/relay-process.js';

/** The layering lint rules' findings for `code` as if it were the file `path` (ESLint's lintText: nothing is written). */
async function layeringFindings(eslint: ESLint, path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(REPO_ROOT, path) });
  return result!.messages.filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports').map((m) => `${path}:${m.line}`);
}

test('the layering of ARCHITECTURE.md is an ESLint rule that reports each kind of bad import, and allows the good ones', async () => {
  const eslint = new ESLint({ cwd: REPO_ROOT });
  const cases: Array<[string, string]> = [
    ['relay/src/core/fixture.ts', "import { connect } from 'node:net';\nimport { x } from '../ssh/server.js';\nimport { createHash } from 'node:crypto';\nimport { y } from './cidr.js';\nimport ipaddr from 'ipaddr.js';"],
    ['relay/src/ssh/fixture.ts', "import { app } from '../../../main/app.js';\nimport { y } from '../core/rules.js';\nimport e from 'electron';\nimport ssh2 from 'ssh2';\nimport { VirtualMachine } from '../backends/virtual-machines.js';\nimport type { VmConsole } from '../sessions/console-seam.js';"],
    ['relay/src/discovery/fixture.ts', "import { VirtualMachineRegistry } from '../backends/virtual-machines.js';"],
    ['main/fixture.ts', "import { SerialSession } from '../relay/src/ssh/server.js';\nimport type { RelayInfo } from '@lifeline/relay/client';\nimport { z } from '@lifeline/relay/dist/relay.js';\nimport { view } from '../renderer/src/app.js';"],
    ['preload/fixture.ts', "import { contextBridge } from 'electron';\nimport type { Api } from './contract.js';\nimport { readFileSync } from 'node:fs';"],
    ['renderer/src/fixture.ts', "import type { Api } from '../../preload/contract.js';\nimport { IPC } from '../../preload/contract.js';\nimport ssh2 from 'ssh2';\nimport { view } from './view.js';\nimport fs from 'fs';\nimport { Terminal } from '@xterm/xterm';"],
  ];
  const found = (await Promise.all(cases.map(([path, code]) => layeringFindings(eslint, path, code)))).flat();
  assert.deepEqual(found, [
    'relay/src/core/fixture.ts:1', // node:net
    'relay/src/core/fixture.ts:2', // out of the core
    'relay/src/ssh/fixture.ts:1', // the desktop
    'relay/src/ssh/fixture.ts:3', // electron
    'relay/src/ssh/fixture.ts:5', // a session-side module reaching the local backend instead of the seam
    'main/fixture.ts:1', // the relay's internals
    'main/fixture.ts:3', // a relay path other than /client
    'main/fixture.ts:4', // the renderer
    'preload/fixture.ts:3', // node:fs
    'renderer/src/fixture.ts:2', // the contract, not type-only
    'renderer/src/fixture.ts:3', // ssh2
    'renderer/src/fixture.ts:5', // a Node builtin
  ]);
});

test('imports are found in all their forms', () => {
  const refs = importsOf("import a from 'a';\nimport type { B } from \"b\";\nexport * from './c.js';\nconst d = await import('d');\nimport 'e';\nimport {\n  f,\n  g,\n} from 'fg';");
  assert.deepEqual(refs.map((r) => `${r.specifier}${r.typeOnly ? ':type' : ''}`), ['a', 'b:type', './c.js', 'd', 'e', 'fg']);
});

test('the app package declares every package that main and preload load at run time', () => {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const runtime = new Set(Object.keys(manifest.dependencies));
  const missing = new Set<string>();
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return walk(path);
      return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
    });
  for (const file of [...walk(join(REPO_ROOT, 'main')), ...walk(join(REPO_ROOT, 'preload'))]) {
    const source = readFileSync(file, 'utf8');
    for (const { specifier } of importsOf(source)) {
      if (specifier.startsWith('.') || specifier.startsWith('node:') || specifier === 'electron') continue;
      const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
      // Type-only imports still need the package at run time when main resolves it (RELAY_BIN does), so all count.
      if (!runtime.has(name)) missing.add(`${name} (${file.slice(REPO_ROOT.length)})`);
    }
  }
  assert.deepEqual([...missing], []);
  // Electron itself is a build tool for electron-builder, never a runtime dependency of the packaged app.
  assert.ok(manifest.devDependencies.electron && !manifest.dependencies.electron);
});
