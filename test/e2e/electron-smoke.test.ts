import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { _electron as electron } from 'playwright-core';
import { REPO_ROOT } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';

/** The Electron binary installed by the `electron` package, if its download happened. */
function electronBinary(): string | undefined {
  const dir = dirname(createRequire(import.meta.url).resolve('electron/package.json'));
  const pathFile = join(dir, 'path.txt');
  if (!existsSync(pathFile)) return undefined;
  const binary = join(dir, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(binary) ? binary : undefined;
}

test('Electron smoke: the window opens and the VM list renders', async (t) => {
  const binary = electronBinary();
  if (!binary) {
    const reason = 'no Electron binary: the electron package was installed with ELECTRON_SKIP_BINARY_DOWNLOAD (its download is blocked here); browser-mode e2e tests cover the same renderer and services';
    console.error(`skipping Electron smoke test: ${reason}`);
    t.skip(reason);
    return;
  }
  const userData = tempDir('electron');
  const app = await electron.launch({ executablePath: binary, args: [REPO_ROOT, `--user-data-dir=${userData.path}`, '--no-sandbox'] });
  try {
    const window = await app.firstWindow();
    await window.getByRole('list', { name: 'Virtual machines' }).waitFor({ timeout: 60_000 });
    await window.getByRole('heading', { name: 'Lifeline' }).waitFor();
  } finally {
    await app.close();
    userData.dispose();
  }
});
