#!/usr/bin/env node
// `lifeline`, the command-line client (docs/cli.md): the built CLI, or how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist-desktop/main/cli/lifeline.js', import.meta.url);
if (!existsSync(fileURLToPath(built))) {
  process.stderr.write('lifeline: the CLI is not built yet: run "npm run setup" (or "npm run build") in the checkout first.\n');
  process.exit(1);
}
await import(built.href);
