import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { findLayeringViolations, importsOf } from '../scripts/layering.js';
import { REPO_ROOT } from './helpers/relay-process.js';

test('the repository follows the import layering of ARCHITECTURE.md', () => {
  const violations = findLayeringViolations(REPO_ROOT);
  assert.deepEqual(violations, [], violations.map((v) => `Bad layering: ${v.file} imports '${v.specifier}': ${v.rule}`).join('\n'));
});

test('the checker reports each kind of bad import', () => {
  const root = mkdtempSync(join(tmpdir(), 'll-layers-'));
  try {
    const files: Record<string, string> = {
      'relay/src/core/rules.ts': "import { connect } from 'node:net';\nimport { x } from '../ssh/server.js';\nimport { createHash } from 'node:crypto';",
      'relay/src/ssh/server.ts': "import { app } from '../../../main/app.js';\nimport { y } from '../core/rules.js';",
      'main/app.ts': "import { SerialSession } from '../relay/src/ssh/server.js';\nimport type { RelayInfo } from '@lifeline/relay/client';\nimport { z } from '@lifeline/relay/dist/relay.js';",
      'preload/index.ts': "import { contextBridge } from 'electron';\nimport type { Api } from './contract.js';\nimport { readFileSync } from 'node:fs';",
      'preload/contract.ts': 'export type Api = {};',
      'renderer/app.ts': "import type { Api } from '../preload/contract.js';\nimport { Api as A } from '../preload/contract.js';\nimport ssh2 from 'ssh2';\nimport { view } from './view.js';",
      'renderer/view.ts': 'export const view = 1;',
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    const found = findLayeringViolations(root).map((v) => `${v.file} ${v.specifier}`).sort();
    assert.deepEqual(found, [
      'main/app.ts ../relay/src/ssh/server.js',
      'main/app.ts @lifeline/relay/dist/relay.js',
      'preload/index.ts node:fs',
      'relay/src/core/rules.ts ../ssh/server.js',
      'relay/src/core/rules.ts node:net',
      'relay/src/ssh/server.ts ../../../main/app.js',
      'renderer/app.ts ../preload/contract.js',
      'renderer/app.ts ssh2',
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
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
