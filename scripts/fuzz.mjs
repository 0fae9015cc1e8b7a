#!/usr/bin/env node
// npm run fuzz -- --minutes N [--runs R]: runs the property-based tests (config parser, raw HTTP at
// the API, the VNC port and browser mode, WebSocket upgrades and frames, SSH from ssh2's client) in rounds of R cases each, with a
// new random seed every round, until N minutes have passed; prints the rounds and case counts.
// A failing round stops the run and prints fast-check's counterexample and seed.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '5' }, runs: { type: 'string', default: '2000' } } });
const minutes = Number(values.minutes);
const runs = Number(values.runs);
if (!(minutes > 0) || !(runs > 0)) {
  console.error('usage: npm run fuzz -- --minutes N [--runs R]');
  process.exit(2);
}
const root = fileURLToPath(new URL('..', import.meta.url));
const suites = [
  { file: 'relay/src/config/parse-config.fuzz.test.ts', scale: 20, label: 'config documents' },
  { file: 'test/integration/untrusted-http.test.ts', scale: 1, label: 'raw HTTP requests per listener (API, VNC port, browser mode), and as many authenticated API route calls' },
  { file: 'test/integration/fuzz-websocket.test.ts', scale: 0.2, label: 'WebSocket upgrade requests and frame sequences (each)' },
  { file: 'test/integration/fuzz-ssh.test.ts', scale: 0.1, label: 'SSH request sequences' },
];
const deadline = Date.now() + minutes * 60_000;
const counts = Object.fromEntries(suites.map((s) => [s.label, 0]));
let rounds = 0;
while (Date.now() < deadline) {
  for (const suite of suites) {
    if (Date.now() >= deadline) break;
    const cases = Math.max(1, Math.round(runs * suite.scale));
    const result = spawnSync(process.execPath, ['scripts/run-tests.mjs', suite.file], { cwd: root, env: { ...process.env, LIFELINE_FUZZ_RUNS: String(cases) }, encoding: 'utf8' });
    if (result.status !== 0) {
      process.stdout.write(result.stdout.slice(-20_000));
      process.stderr.write(result.stderr.slice(-5_000));
      console.error(`fuzz: ${suite.file} failed in round ${rounds + 1} (counterexample and seed above)`);
      process.exit(1);
    }
    counts[suite.label] += cases;
  }
  rounds++;
  process.stdout.write(`fuzz: round ${rounds} done, ${Math.round((deadline - Date.now()) / 1000)} s left; cases so far: ${JSON.stringify(counts)}\n`);
}
process.stdout.write(`fuzz: ${minutes} min, ${rounds} rounds, no failure. Cases: ${Object.entries(counts).map(([label, n]) => `${n} ${label}`).join('; ')}\n`);
