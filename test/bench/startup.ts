/*
 * The relay's start time and idle memory (issue 19: the libraries that replace hand-written
 * parts must not make it slower to start or fatter by more than 10 %). Each run is a fresh data
 * folder (first start: host key, admin token, store) and a second start on it; time from spawn
 * to the "relay ready" line; RSS after 3 s idle with two echoing consoles, one SSH-less.
 *
 *   npm run build && node --import tsx test/bench/startup.ts [runs]
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { rssKiB } from '../helpers/proc.js';
import { startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { startFakeConsole } from './fake-console.js';

const runs = Number(process.argv[2] ?? 10);
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const tmp = tempDir('startup');
const first: number[] = [];
const again: number[] = [];
const rss: number[] = [];
try {
  const serial = await startFakeConsole(join(tmp.path, 's.sock'), 0);
  const vnc = await startFakeConsole(join(tmp.path, 'v.sock'), 0, true);
  try {
    for (let run = 0; run < runs; run++) {
      const dataDir = join(tmp.path, `data-${run}`);
      const configPath = join(tmp.path, `relay-${run}.json`);
      writeFileSync(configPath, JSON.stringify({ dataDir, api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, virtualMachines: [{ name: 'a', serial: serial.path, vnc: vnc.path }, { name: 'b', vnc: vnc.path }] }));
      for (const into of [first, again]) {
        const start = performance.now();
        const relay = await startRelay(configPath, dataDir);
        into.push(performance.now() - start);
        if (into === again) {
          await new Promise((resolve) => setTimeout(resolve, 3000));
          rss.push(rssKiB(relay.child.pid!) / 1024);
        }
        await relay.stop();
      }
    }
  } finally {
    serial.close();
    vnc.close();
  }
  process.stdout.write(`relay start (${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model ?? 'CPU'} × ${cpus().length}, Node ${process.version}, ${runs} runs, medians):\n`
    + `  first start (new data folder) ${median(first).toFixed(0)} ms, start on existing data ${median(again).toFixed(0)} ms, idle RSS ${median(rss).toFixed(1)} MiB\n`);
} finally {
  tmp.dispose();
}
