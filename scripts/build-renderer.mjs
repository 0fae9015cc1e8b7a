#!/usr/bin/env node
// Bundles the renderer (TypeScript, xterm.js, noVNC) into renderer/dist, and the preload into one
// CommonJS script, with esbuild.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'renderer', 'dist');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(root, 'renderer', 'src', 'main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  outfile: join(out, 'app.js'),
  sourcemap: true,
  logLevel: 'warning',
});
// The preload, as Electron's sandbox needs it: one CommonJS script that requires only 'electron'.
await build({
  entryPoints: [join(root, 'preload', 'index.ts')],
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'es2022',
  external: ['electron'],
  outfile: join(root, 'dist-desktop', 'preload', 'preload.cjs'),
  logLevel: 'warning',
});
const require = createRequire(import.meta.url);
const xtermCss = readFileSync(require.resolve('@xterm/xterm/css/xterm.css'), 'utf8');
writeFileSync(join(out, 'app.css'), `${xtermCss}\n${readFileSync(join(root, 'renderer', 'styles.css'), 'utf8')}`);
copyFileSync(join(root, 'renderer', 'index.html'), join(out, 'index.html'));
