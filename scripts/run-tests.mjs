#!/usr/bin/env node
// Runs every test: the relay's colocated unit tests, then the integration suites under test/.
// A hung test fails after 5 minutes instead of stalling the run.
// Integration tests use real QEMU VMs, the OpenSSH client and SQLite; missing tools fail loudly
// here instead of letting suites pass by running nothing.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import which from 'which';

const root = fileURLToPath(new URL('..', import.meta.url));

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const missing = ['qemu-system-x86_64', 'ssh', 'ssh-keygen', 'tmux', 'asciinema', 'scp', 'busybox', 'chromium', 'gvnccapture', 'openssl', 'curl', 'ssh-audit', 'plink', 'puttygen', 'promtool', 'systemd-analyze', 'dbus-run-session', 'gnome-keyring-daemon', 'secret-tool', 'virsh', 'libvirtd', 'virtlogd', 'mkfs.ext4', 'e2fsck', 'losetup'].filter(
  (tool) => which.sync(tool, { nothrow: true }) === null,
);
// Debian's Python SSH libraries (the SSH tests connect with them as automation does).
for (const module of ['paramiko', 'asyncssh']) {
  if (spawnSync('/usr/bin/python3', ['-c', `import ${module}`]).status !== 0) missing.push(`python3-${module}`);
}
if (missing.length > 0) {
  console.error(`missing test prerequisites: ${missing.join(', ')}; install them with: bash scripts/setup.sh`);
  process.exit(1);
}

// The desktop tests use the real Secret Service: run everything inside a private D-Bus session
// with an unlocked gnome-keyring whose files live in a temp folder, removed afterwards.
if (process.env.LIFELINE_TEST_KEYRING !== '1') {
  const home = mkdtempSync(join(tmpdir(), 'll-keyring-'));
  const runtime = join(home, 'run');
  mkdirSync(runtime, { mode: 0o700 });
  chmodSync(runtime, 0o700);
  const inner = 'eval "$(printf %s lifeline-test | gnome-keyring-daemon --unlock --components=secrets)"; export GNOME_KEYRING_CONTROL; exec "$0" "$@"';
  const result = spawnSync('dbus-run-session', ['--', 'bash', '-c', inner, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, LIFELINE_TEST_KEYRING: '1', XDG_DATA_HOME: join(home, 'data'), XDG_RUNTIME_DIR: runtime },
  });
  rmSync(home, { recursive: true, force: true });
  process.exit(result.status ?? 1);
}

// `run-tests.mjs --script file.ts` runs one script inside the same environment (e.g. the README screenshot).
if (process.argv[2] === '--script') {
  const result = spawnSync(process.execPath, ['--import', 'tsx', process.argv[3]], { cwd: root, stdio: 'inherit' });
  process.exit(result.status ?? 1);
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
