#!/usr/bin/env node
// `npm start`: the desktop app on its embedded default. Uses Electron when its binary is
// installed; otherwise says so and runs the same app in browser mode.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const electronDir = dirname(createRequire(import.meta.url).resolve('electron/package.json'));
const pathFile = join(electronDir, 'path.txt');
const binary = existsSync(pathFile) ? join(electronDir, 'dist', readFileSync(pathFile, 'utf8').trim()) : undefined;

// The app runs in a process group of its own, so that it hears each signal once, from here: a
// Ctrl-C or a closed terminal signals the whole foreground group, and a second signal makes the
// app give up its graceful close (and leave its VMs to the watchdog).
const options = { stdio: 'inherit', detached: true };
const child = binary && existsSync(binary)
  ? spawn(binary, [root, ...process.argv.slice(2)], options)
  : (process.stderr.write('Electron is not installed here (its binary download was skipped or blocked); starting Lifeline in browser mode.\n'),
    spawn(process.execPath, [join(root, 'dist-desktop', 'main', 'web.js'), ...process.argv.slice(2)], options));
// Ctrl-C, kill, or the terminal closing (SIGHUP): the app stops its relay and VMs; wait for it to finish.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
// Nothing to print to once the terminal is gone.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
child.on('exit', (code) => process.exit(code ?? 0));
