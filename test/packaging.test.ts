import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { REPO_ROOT } from './helpers/relay-process.js';
import { tempDir } from './helpers/temp.js';

const tmp = tempDir('packaging');
after(() => tmp.dispose());

test("electron-builder.yml is valid by electron-builder's own schema, and every file it names exists", () => {
  const config = parse(readFileSync(join(REPO_ROOT, 'electron-builder.yml'), 'utf8')) as Record<string, any>;
  const schema = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'app-builder-lib', 'scheme.json'), 'utf8'));
  const ajv = new Ajv({ allErrors: true, strict: false });
  const valid = ajv.validate(schema, config);
  assert.ok(valid, JSON.stringify(ajv.errors, null, 2));
  for (const file of [...config.extraResources.map((r: { from: string }) => r.from), config.deb.afterInstall, config.deb.afterRemove]) readFileSync(join(REPO_ROOT, file));
  assert.equal(config.linux.executableName, 'lifeline-desktop', '/usr/bin/lifeline is the CLI');
});

test('the packaged CLI wrapper runs the CLI inside the app with the app\'s executable as Node', () => {
  // The layout of an unpacked Linux build: <app>/lifeline-desktop, <app>/resources/{lifeline, app.asar/…}.
  const app = join(tmp.path, 'Lifeline');
  mkdirSync(join(app, 'resources', 'app.asar', 'dist-desktop', 'main'), { recursive: true });
  // Stands in for Electron run as Node (ELECTRON_RUN_AS_NODE=1): Node itself, which it must be handed.
  writeFileSync(join(app, 'lifeline-desktop'), `#!/bin/sh\n[ "$ELECTRON_RUN_AS_NODE" = 1 ] || exit 97\nexec '${process.execPath}' "$@"\n`, { mode: 0o755 });
  copyFileSync(join(REPO_ROOT, 'build', 'lifeline-cli.sh'), join(app, 'resources', 'lifeline'));
  execFileSync('chmod', ['+x', join(app, 'resources', 'lifeline')]);
  symlinkSync(join(REPO_ROOT, 'dist-desktop', 'main', 'cli'), join(app, 'resources', 'app.asar', 'dist-desktop', 'main', 'cli'));
  // As /usr/bin/lifeline links to it.
  symlinkSync(join(app, 'resources', 'lifeline'), join(tmp.path, 'lifeline'));
  const version = execFileSync(join(tmp.path, 'lifeline'), ['--version'], { encoding: 'utf8' }).trim();
  assert.equal(version, JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version);
});
