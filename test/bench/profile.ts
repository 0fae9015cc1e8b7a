/**
 * `npm run bench:profile -- <serial|ws|ws-up|rtt> [MB] [runs]`: runs the relay under `node --cpu-prof` for one
 * benchmark scenario and prints where its CPU time went (self time by function and by package).
 * The raw .cpuprofile is kept (path printed) for Chrome DevTools' Performance panel.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKey } from '../helpers/openssh.js';
import { REPO_ROOT, startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { cpuSplit, treeCpuSeconds } from '../helpers/proc.js';
import { opensshThroughput, roundTrips, ssh2Client } from './clients.js';
import { RawWebSocketClient } from './raw-websocket.js';
import { startFakeConsole } from './fake-console.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const scenario = process.argv[2] ?? 'serial';
const megabytes = Number(process.argv[3] ?? 200);
const runs = Number(process.argv[4] ?? 1);
const MB = 1024 * 1024;
const outDir = join(REPO_ROOT, '.profiles');

/** Self time per function and per package of a V8 CPU profile, in ms. */
export function summarise(profile: CpuProfile): { functions: Array<[string, number]>; packages: Array<[string, number]>; totalMs: number } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const functions = new Map<string, number>();
  const packages = new Map<string, number>();
  let totalMs = 0;
  for (const [id, ms] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    totalMs += ms;
    const file = url.startsWith('file://') ? relative(REPO_ROOT, new URL(url).pathname) : url;
    const name = `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
    functions.set(name, (functions.get(name) ?? 0) + ms);
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1] ?? (file.startsWith('node:') ? 'node core (JS)' : file.includes('relay/dist') ? 'relay (ours)' : file ? file : functionName.startsWith('(') ? functionName : 'native/builtin');
    packages.set(pkg, (packages.get(pkg) ?? 0) + ms);
  }
  const sorted = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1]);
  return { functions: sorted(functions), packages: sorted(packages), totalMs };
}

async function main(): Promise<void> {
  const tmp = tempDir('profile');
  try {
    const key = generateKey(tmp.path, 'key');
    const serial = await startFakeConsole(join(tmp.path, 'serial.sock'), megabytes * MB);
    const vnc = await startFakeConsole(join(tmp.path, 'vnc.sock'), megabytes * MB, true);
    const dataDir = join(tmp.path, 'data');
    const configPath = join(tmp.path, 'relay.json');
    writeFileSync(configPath, JSON.stringify({ dataDir, api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, virtualMachines: [{ name: 'bench', serial: serial.path, vnc: vnc.path }] }));
    mkdirSync(outDir, { recursive: true });
    const before = new Set(readdirSync(outDir));
    const relay = await startRelay(configPath, dataDir, {}, [...(process.env.NO_PROF ? [] : ['--cpu-prof', `--cpu-prof-dir=${outDir}`]), ...(process.env.RELAY_NODE_ARGS ?? '').split(' ').filter(Boolean)], process.env.RELAY_BIN);
    try {
      const created = await relay.api('PUT', '/v1/virtualMachines/bench/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
      const accessId = created.body.virtualMachineAccessId as string;
      await sleep(500);
      // STRACE=<file>: count the relay's system calls during the scenario; PERF=<file>: perf record it.
      const tracer = process.env.STRACE
        ? spawn('strace', ['-c', '-f', '-o', process.env.STRACE, '-p', String(relay.child.pid)], { stdio: 'ignore' })
        : process.env.PERF
          ? spawn('perf', ['record', '-F', '999', '-g', '-o', process.env.PERF, '-p', String(relay.child.pid)], { stdio: 'ignore' })
          : undefined;
      if (tracer) await sleep(1000);
      if (scenario === 'serial') {
        for (let run = 0; run < runs; run++) {
          const { seconds, cpuSeconds } = await opensshThroughput(relay.sshPort, accessId, key.privateKeyPath, megabytes * MB, undefined, () => treeCpuSeconds(relay.child.pid!));
          process.stderr.write(`serial flood through OpenSSH: ${(megabytes / seconds).toFixed(0)} MB/s, relay CPU ${((cpuSeconds * 1000) / megabytes).toFixed(2)} ms/MB\n`);
          await sleep(300);
        }
      } else if (scenario === 'ws' || scenario === 'ws-up') {
        for (let run = 0; run < runs; run++) {
          const { url } = (await relay.api('POST', '/v1/virtualMachines/bench/vncTokens')).body as { url: string };
          const client = await RawWebSocketClient.open(url.replace(/^http/, 'ws'));
          const cpu = cpuSplit(relay.child.pid!);
          const seconds = scenario === 'ws' ? await client.flood(megabytes * MB) : await client.sink(megabytes * MB);
          const after = cpuSplit(relay.child.pid!);
          client.close();
          const perMB = (s: number): string => ((s * 1000) / megabytes).toFixed(2);
          process.stderr.write(`WebSocket ${scenario === 'ws' ? 'server → client' : 'client → server'}: ${(megabytes / seconds).toFixed(0)} MB/s, relay CPU user ${perMB(after.user - cpu.user)} + system ${perMB(after.system - cpu.system)} ms/MB\n`);
          await sleep(300);
        }
      } else if (scenario === 'rtt') {
        const client = await ssh2Client(relay.sshPort, accessId, key.privateKeyPath);
        const raw = await roundTrips(client.stream, Number(process.env.RTTS ?? 5000));
        if (process.env.RTT_OUTLIERS) {
          let at = 0;
          for (const [i, t] of raw.entries()) {
            at += t;
            if (t > 0.5) process.stderr.write(`outlier #${i} at ${at.toFixed(1)} ms: ${t.toFixed(3)} ms\n`);
          }
        }
        const times = raw.sort((a, b) => a - b);
        client.close();
        process.stderr.write(`round trips: p50 ${times[2500]!.toFixed(3)} ms, p99 ${times[4950]!.toFixed(3)} ms, max ${times.at(-1)!.toFixed(3)} ms\n`);
      } else {
        throw new Error(`unknown scenario ${scenario}: use serial, ws, ws-up or rtt`);
      }
      if (tracer) {
        tracer.kill('SIGINT');
        await new Promise((resolve) => tracer.once('exit', resolve));
      }
    } finally {
      await relay.stop();
      if (process.env.RELAY_OUTPUT) process.stderr.write(relay.output().split('\n').filter((l) => !l.startsWith('{')).join('\n'));
      serial.close();
      vnc.close();
    }
    if (process.env.NO_PROF) return;
    const written = readdirSync(outDir).filter((name) => !before.has(name) && name.endsWith('.cpuprofile'));
    if (written.length === 0) throw new Error('the relay wrote no profile');
    const path = join(outDir, written[0]!);
    const { functions, packages, totalMs } = summarise(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile);
    const pct = (ms: number): string => `${((ms / totalMs) * 100).toFixed(1).padStart(5)} %`;
    process.stdout.write(`profile: ${relative(REPO_ROOT, path)} (${(totalMs / 1000).toFixed(1)} s sampled)\n\nby package:\n`);
    for (const [name, ms] of packages.slice(0, 12)) process.stdout.write(`${pct(ms)}  ${name}\n`);
    process.stdout.write('\nby function (self time):\n');
    for (const [name, ms] of functions.slice(0, 30)) process.stdout.write(`${pct(ms)}  ${name}\n`);
  } finally {
    tmp.dispose();
  }
}

await main();
