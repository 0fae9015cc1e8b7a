import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
