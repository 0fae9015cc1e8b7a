#!/usr/bin/env node
// Runs every test: the relay's colocated unit tests, then the integration suites under test/.
// A hung test fails after 5 minutes instead of stalling the run.
// Integration tests use real QEMU VMs, the OpenSSH client and SQLite; missing tools fail loudly
// here instead of letting suites pass by running nothing.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const missing = ['qemu-system-x86_64', 'ssh', 'ssh-keygen', 'busybox', 'chromium', 'gvnccapture', 'openssl'].filter(
  (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
);
if (missing.length > 0) {
  console.error(`missing test prerequisites: ${missing.join(', ')}; install them with: bash scripts/setup.sh`);
  process.exit(1);
}

const filter = process.argv.slice(2);
const files = [...testFiles(join(root, 'relay', 'src')), ...testFiles(join(root, 'test'))]
  .map((file) => relative(root, file))
  .filter((file) => filter.length === 0 || filter.some((f) => file.includes(f)))
  .sort((a, b) => Number(a.startsWith('test/integration')) - Number(b.startsWith('test/integration')) || a.localeCompare(b));
if (files.length === 0) {
  console.error(`no test files match ${filter.join(' ')}`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=300000', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
