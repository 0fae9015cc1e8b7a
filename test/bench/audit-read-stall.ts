/*
 * Does reading a large audit trail hold up the consoles? (issue 24: 8 parallel
 * `GET /v1/auditEvents?limit=1` over a 176 MiB trail froze serial echo for up to 3 s and
 * /healthz took 9.9 s.) A relay with an echoing console and a trail of 11 files × 16 MiB;
 * one byte is typed every 20 ms on an SSH session and its echo timed, first idle, then while
 * 8 clients read the trail at once: `limit=1` (stops at the first event) and `vm=<none>`
 * (matches nothing, so every file is read to its end: the worst case). /healthz is timed meanwhile.
 *
 *   npm run build && node --import tsx test/bench/audit-read-stall.ts
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { writeAuditTrail } from '../helpers/audit-trail.js';
import { generateKey } from '../helpers/openssh.js';
import { startRelay } from '../helpers/relay-process.js';
import { openSsh2Shell } from '../helpers/ssh2-shell.js';
import { tempDir } from '../helpers/temp.js';
import { startFakeConsole } from './fake-console.js';

const FILE_BYTES = 16 * 1024 * 1024;
const FILES = 11;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const tmp = tempDir('audit-stall');
  const cleanups: Array<() => unknown> = [];
  try {
    const dataDir = join(tmp.path, 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    const events = writeAuditTrail(dataDir, FILES, FILE_BYTES);
    const console = await startFakeConsole(join(tmp.path, 'echo.sock'), 0);
    cleanups.push(() => console.close());
    const configPath = join(tmp.path, 'relay.json');
    writeFileSync(configPath, JSON.stringify({ dataDir, api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, virtualMachines: [{ name: 'echo', serial: console.path }] }));
    const relay = await startRelay(configPath, dataDir);
    cleanups.push(() => relay.stop());
    const key = generateKey(tmp.path, 'key');
    const put = await relay.api('PUT', '/v1/virtualMachines/echo/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    const { client, shell } = await openSsh2Shell({ port: relay.sshPort, user: put.body.virtualMachineAccessId, privateKey: readFileSync(key.privateKeyPath) });
    cleanups.push(() => client.end());

    const echo = async (ms: number): Promise<number[]> => {
      const times: number[] = [];
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const byte = Buffer.from([0x61 + (times.length % 26)]);
        const start = performance.now();
        await new Promise<void>((resolve) => {
          const onData = (data: Buffer): void => {
            if (data.includes(byte[0]!)) {
              shell.off('data', onData);
              resolve();
            }
          };
          shell.on('data', onData);
          shell.write(byte);
        });
        times.push(performance.now() - start);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return times;
    };
    const healthz = async (stop: () => boolean): Promise<number[]> => {
      const times: number[] = [];
      while (!stop()) {
        const start = performance.now();
        await fetch(`${relay.apiUrl}/healthz`).then((r) => r.text());
        times.push(performance.now() - start);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return times;
    };

    const rows: string[] = [];
    const idle = await echo(3000);
    rows.push(`| idle | — | ${percentile(idle, 50).toFixed(2)} | ${percentile(idle, 99).toFixed(2)} | ${Math.max(...idle).toFixed(1)} | — |`);
    for (const [label, query] of [['8 × `limit=1`', 'limit=1'], ['8 × `vm=none` (reads all 176 MiB)', 'vm=none&limit=1']] as const) {
      let done = false;
      const start = performance.now();
      const reads = Promise.all(Array.from({ length: 8 }, () => relay.api('GET', `/v1/auditEvents?${query}`).then((r) => {
        if (r.status !== 200) throw new Error(`auditEvents ${r.status}`);
        return performance.now() - start;
      })));
      const health = healthz(() => done);
      const during: number[] = [];
      const echoing = (async () => {
        while (!done) during.push(...(await echo(500)));
      })();
      const durations = await reads;
      done = true;
      await echoing;
      const h = await health;
      rows.push(`| ${label} | ${(Math.max(...durations) / 1000).toFixed(2)} s | ${percentile(during, 50).toFixed(2)} | ${percentile(during, 99).toFixed(2)} | ${Math.max(...during).toFixed(1)} | ${Math.max(...h).toFixed(1)} |`);
    }
    process.stdout.write([
      `Audit trail reads during a console (${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, Node ${process.version}):`,
      `trail of ${FILES} files × 16 MiB (${events} events); echo of one byte every 20 ms on an SSH console.`,
      '',
      '| load | all 8 reads done in | echo p50 ms | echo p99 ms | echo max ms | /healthz max ms |',
      '|---|---|---|---|---|---|',
      ...rows,
      '',
    ].join('\n'));
  } finally {
    for (const step of cleanups.reverse()) {
      try {
        await step();
      } catch {
        // Best effort.
      }
    }
    tmp.dispose();
  }
}

await main();
