/**
 * `npm run bench [-- --quick] [-- --only 3,4]`: the relay side by side with OpenSSH sshd+socat and
 * websockify, on loopback, in one run. A full run writes docs/benchmarks.md; `--quick` (a smoke
 * check, about a minute) and `--only` print the report instead. Exits non-zero when a section
 * could not be measured. Not part of `npm test`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, release, totalmem, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKey, spawnLocalForward } from '../helpers/openssh.js';
import { REPO_ROOT, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { directClient, floodSeconds, waitForPort, negotiatedCipher, opensshSetup, opensshSetupRetrying, opensshThroughput, roundTrips, ssh2Client, type ByteClient } from './clients.js';
import { RawWebSocketClient } from './raw-websocket.js';
import { startFakeConsole, type FakeConsole } from './fake-console.js';
import { fmt, median, quantile, ratio, spread } from './stats.js';
import { rssKiB, treeCpuSeconds, treeRssKiB } from '../helpers/proc.js';
import { idleFlood } from '../helpers/flood.js';
import { startSshd } from './sshd-peer.js';
import { fleetSection } from './fleet-bench.js';
import { cliSection } from './cli-bench.js';
import { freePort } from '../helpers/ports.js';

const quick = process.argv.includes('--quick');
/** `--only 3,4` runs just those sections (for profiling work); the report then says so. */
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? '').split(',')) : undefined;
const P = quick
  ? { setupRuns: 5, rtts: 500, rounds: 3, warmRtts: 1000, floodMB: 20, floodRuns: 2, warmRuns: 1, idle: [200], active: 100, slowReaderS: 5, wsMB: 20, flood: 5000, floodClientRuns: 3, floodDeadlineS: 15 }
  : { setupRuns: 15, rtts: 1000, rounds: 9, warmRtts: 5000, floodMB: 200, floodRuns: 5, warmRuns: 2, idle: [1000, 5000], active: 1000, slowReaderS: 30, wsMB: 200, flood: 5000, floodClientRuns: 15, floodDeadlineS: 30 };
const MB = 1024 * 1024;
const tmp = tempDir('bench');
const cleanups: Array<() => unknown> = [];
const report: string[] = [];
/** Sections that could not be measured: the run then exits non-zero (a smoke check must fail). */
const failures: string[] = [];
/** Each target of the issue, with what was measured and whether it was met. */
const targets: Array<{ target: string; measured: string; met: boolean }> = [];
const log = (line: string): void => void process.stderr.write(`${line}\n`);


const numpy = spawnSync('python3', ['-c', 'import numpy']).status === 0;

function packageVersion(name: string): string {
  return spawnSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8' }).stdout.trim() || 'unknown';
}

function version(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0] ?? 'unknown';
}

async function relayWith(vms: Array<{ name: string; serial?: string; vnc?: string }>, name: string, defaultLimits = false): Promise<RelayProcess> {
  const dataDir = join(tmp.path, `${name}-data`);
  const configPath = join(tmp.path, `${name}.json`);
  // The bench opens its sessions 50 at a time from one address: above the default pre-auth limits (MaxStartups 10:30:100, 8 per source).
  const limits = defaultLimits ? {} : { maxStartups: '1000:30:2000', perSourceMaxStartups: 1000 };
  writeFileSync(configPath, JSON.stringify({ dataDir, api: { listen: '127.0.0.1:0' }, ssh: { port: 0, ...limits }, vnc: { port: 0, ...limits }, consoles: { defaultTtl: '24h', maxTtl: '30d' }, virtualMachines: vms }));
  // BENCH_RELAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=.profiles": the relay under the profiler (see profile.ts).
  const relay = await startRelay(configPath, dataDir, {}, (process.env.BENCH_RELAY_NODE_ARGS ?? '').split(' ').filter(Boolean));
  cleanups.push(() => relay.stop());
  return relay;
}

async function section(title: string, body: () => Promise<void>): Promise<void> {
  if (only && !only.has(title.split('.')[0]!)) return;
  log(`bench: ${title}`);
  report.push(`\n## ${title}\n`);
  let timer: NodeJS.Timeout | undefined;
  try {
    const limitMs = (quick ? 3 : 15) * 60_000;
    await Promise.race([body(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${limitMs / 60_000} min`)), limitMs)))]);
  } catch (error) {
    failures.push(title);
    report.push(`\n**Not measured:** ${(error as Error).message.split('\n')[0]}\n`);
    log(`bench: ${title} failed: ${(error as Error).stack}`);
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<void> {
  const key = generateKey(tmp.path, 'bench-key');
  const floodBytes = P.floodMB * MB;
  const consoles: Record<string, FakeConsole> = {};
  for (const name of ['relay', 'sshd', 'direct', 'vnc', 'endless']) {
    const bytes = name === 'vnc' ? P.wsMB * MB : name === 'endless' ? 1e13 : floodBytes;
    consoles[name] = await startFakeConsole(join(tmp.path, `${name}.sock`), bytes, name === 'vnc');
    cleanups.push(consoles[name]!.close);
  }
  const relay = await relayWith([{ name: 'bench', serial: consoles.relay!.path, vnc: consoles.vnc!.path }, { name: 'endless', serial: consoles.endless!.path }], 'main');
  const endlessId = (await relay.api('PUT', '/v1/virtualMachines/endless/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } })).body.virtualMachineAccessId as string;
  const created = await relay.api('PUT', '/v1/virtualMachines/bench/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
  const accessId = created.body.virtualMachineAccessId as string;
  const sshdPort = await freePort();
  const sshd = await startSshd(join(tmp.path, 'sshd'), sshdPort, key.publicKey);
  cleanups.push(sshd.stop);
  const sshdSock = consoles.sshd!.path;
  // sshd logs in the user running the benchmark (root on CI, yourself on a workstation).
  const sshdUser = userInfo().username;
  const relayCipher = await negotiatedCipher(relay.sshPort, accessId, key.privateKeyPath);
  // A command that fails at once: the cipher is negotiated before it runs, and no socat stays on the console.
  const sshdCipher = await negotiatedCipher(sshdPort, sshdUser, key.privateKeyPath, `${sshdSock}.none`);

  await section('1. Session setup (start of the client to the first console byte)', async () => {
    const relayRuns: number[] = [];
    const sshdRuns: number[] = [];
    const ssh2Runs: number[] = [];
    for (let i = 0; i < P.setupRuns; i++) {
      relayRuns.push(await opensshSetup(relay.sshPort, accessId, key.privateKeyPath));
      await sleep(100);
      sshdRuns.push(await opensshSetup(sshdPort, sshdUser, key.privateKeyPath, sshdSock));
      await sleep(100);
      const client = await ssh2Client(relay.sshPort, accessId, key.privateKeyPath);
      const started = process.hrtime.bigint();
      await new Promise<void>((resolve) => {
        client.stream.once('data', () => resolve());
        client.stream.write('x');
      });
      ssh2Runs.push(client.setupMs + Number(process.hrtime.bigint() - started) / 1e6);
      client.close();
      await sleep(100);
    }
    report.push(`${P.setupRuns} runs each, alternating. ms.\n`, '| path | median | min–max | vs OpenSSH path |', '|---|---|---|---|');
    report.push(`| OpenSSH \`ssh\` → relay | ${fmt(median(relayRuns))} | ${spread(relayRuns)} | ${ratio(median(relayRuns), median(sshdRuns))} |`);
    report.push(`| OpenSSH \`ssh\` → sshd + socat | ${fmt(median(sshdRuns))} | ${spread(sshdRuns)} | 1.00× |`);
    report.push(`| ssh2 client → relay | ${fmt(median(ssh2Runs))} | ${spread(ssh2Runs)} | ${ratio(median(ssh2Runs), median(sshdRuns))} |`);
    targets.push({ target: 'session setup ≤ OpenSSH path', measured: `${fmt(median(relayRuns))} ms vs ${fmt(median(sshdRuns))} ms`, met: median(relayRuns) <= median(sshdRuns) });
  });

  await section('2. Keystroke latency (1-byte round trips through an echo console)', async () => {
    // Each path first gets P.warmRtts discarded round trips: both Node processes (the relay and the
    // benchmark's own ssh2 client) compile their hot paths on first use, and a relay runs for days.
    // The cold figure (the warm-up itself, on a relay that has only done section 1) is reported too.
    // Then P.rounds rounds of P.rtts round trips, the paths interleaved, so a moment of noise on
    // this (virtual) machine lands in one round of one path and the median over rounds shows it.
    const paths: Array<[string, () => Promise<ByteClient>]> = [
      ['direct unix socket', () => directClient(consoles.direct!.path)],
      ['relay (ssh2 client)', () => ssh2Client(relay.sshPort, accessId, key.privateKeyPath)],
      ['sshd + socat (ssh2 client)', () => ssh2Client(sshdPort, sshdUser, key.privateKeyPath, sshdSock)],
    ];
    const rows: Array<{ name: string; client: ByteClient; cold: number[]; p50: number[]; p99: number[] }> = [];
    for (const [name, open] of paths) {
      const client = await open();
      cleanups.push(() => client.close());
      rows.push({ name, client, cold: await roundTrips(client.stream, P.warmRtts), p50: [], p99: [] });
    }
    for (let round = 0; round < P.rounds; round++) {
      for (const row of rows) {
        const times = await roundTrips(row.client.stream, P.rtts, 20);
        row.p50.push(quantile(times, 0.5));
        row.p99.push(quantile(times, 0.99));
      }
    }
    for (const row of rows) row.client.close();
    await sleep(300); // the consoles serve one client at a time: let them see these go
    const base = median(rows[0]!.p99);
    report.push(
      `${P.rounds} rounds of ${P.rtts} sequential round trips per path, paths interleaved, after ${P.warmRtts} warm-up round trips on the same connection; the same ssh2 client for both SSH paths. Medians over the rounds, with the spread of p99. ms.\n`,
      '| path | p50 | p99 | p99 min–max | added p99 over direct | cold p99 (the warm-up) |',
      '|---|---|---|---|---|---|',
    );
    for (const row of rows) {
      report.push(`| ${row.name} | ${fmt(median(row.p50), 3)} | ${fmt(median(row.p99), 3)} | ${spread(row.p99, 3)} | ${fmt(median(row.p99) - base, 3)} | ${fmt(quantile(row.cold, 0.99), 3)} |`);
    }
    const added = median(rows[1]!.p99) - base;
    targets.push({ target: 'added p99 keystroke latency ≤ 1 ms over direct', measured: `${fmt(added, 3)} ms (sshd+socat: ${fmt(median(rows[2]!.p99) - base, 3)} ms)`, met: added <= 1 });
  });

  await section(`3. Serial throughput (${P.floodMB} MB of console output)`, async () => {
    const direct = async (): Promise<{ seconds: number; cpuSeconds: number }> => {
      const client = await directClient(consoles.direct!.path);
      const seconds = await floodSeconds(client.stream, floodBytes);
      client.close();
      return { seconds, cpuSeconds: Number.NaN };
    };
    const paths: Array<{ name: string; run: () => Promise<{ seconds: number; cpuSeconds: number }>; cold: number; rates: number[]; cpu: number[] }> = [
      { name: 'direct unix socket', run: direct, cold: Number.NaN, rates: [], cpu: [] },
      { name: `relay (OpenSSH ssh, ${relayCipher})`, run: () => opensshThroughput(relay.sshPort, accessId, key.privateKeyPath, floodBytes, undefined, () => treeCpuSeconds(relay.child.pid!)), cold: Number.NaN, rates: [], cpu: [] },
      { name: `sshd + socat (OpenSSH ssh, ${sshdCipher})`, run: () => opensshThroughput(sshdPort, sshdUser, key.privateKeyPath, floodBytes, sshdSock, () => treeCpuSeconds(sshd.pid)), cold: Number.NaN, rates: [], cpu: [] },
    ];
    // Discarded warm-up runs per path (the relay's JIT, the page cache, TCP autotuning), the first one
    // reported as "cold", then the runs, interleaved.
    for (const path of paths) {
      for (let i = 0; i < P.warmRuns; i++) {
        const { seconds } = await path.run();
        if (i === 0) path.cold = P.floodMB / seconds;
        await sleep(300);
      }
    }
    for (let i = 0; i < P.floodRuns; i++) {
      for (const path of paths) {
        const { seconds, cpuSeconds } = await path.run();
        if (process.env.BENCH_VERBOSE) log(`bench:   ${path.name}: ${fmt(P.floodMB / seconds)} MB/s, ${fmt((cpuSeconds * 1000) / P.floodMB)} ms/MB`);
        path.rates.push(P.floodMB / seconds);
        path.cpu.push((cpuSeconds * 1000) / P.floodMB);
        await sleep(300);
      }
    }
    const [, ours, theirs] = paths as [unknown, (typeof paths)[0], (typeof paths)[0]];
    report.push(
      `${P.floodRuns} runs per path after ${P.warmRuns} warm-up run(s), interleaved. MB/s (MB = 2^20 bytes). Server CPU is the relay process (all threads), or sshd's per-connection processes plus socat, per MB moved; the OpenSSH client is the same for both. Cold is the first warm-up run.\n`,
      '| path | MB/s median | min–max | vs OpenSSH path | server CPU ms/MB | cold MB/s |',
      '|---|---|---|---|---|---|',
    );
    for (const path of paths) report.push(`| ${path.name} | ${fmt(median(path.rates))} | ${spread(path.rates)} | ${ratio(median(path.rates), median(theirs.rates))} | ${fmt(median(path.cpu))} | ${fmt(path.cold)} |`);
    targets.push({ target: 'serial throughput ≥ OpenSSH path', measured: `${fmt(median(ours.rates))} vs ${fmt(median(theirs.rates))} MB/s (${ratio(median(ours.rates), median(theirs.rates))}); server CPU ${fmt(median(ours.cpu))} vs ${fmt(median(theirs.cpu))} ms/MB`, met: median(ours.rates) >= median(theirs.rates) });
  });

  await section('4. VNC stream: WebSocket (relay vs websockify) and ssh -L (relay vs OpenSSH)', async () => {
    const wsPort = await freePort();
    const websockify: ChildProcess = spawn('websockify', [`--unix-target=${consoles.vnc!.path}`, `127.0.0.1:${wsPort}`], { stdio: 'ignore' });
    cleanups.push(() => websockify.kill('SIGTERM'));
    await waitForPort(wsPort);
    const mint = async (): Promise<string> => ((await relay.api('POST', '/v1/virtualMachines/bench/vncTokens')).body.url as string).replace(/^http/, 'ws');
    interface WsPath { name: string; url: () => Promise<string>; pid: number; coldDown?: number; coldUp?: number; down: number[]; up: number[]; downCpu: number[]; upCpu: number[]; p50: number[]; p99: number[]; rtt?: RawWebSocketClient }
    const paths: WsPath[] = [
      { name: 'relay WebSocket', url: mint, pid: relay.child.pid!, down: [], up: [], downCpu: [], upCpu: [], p50: [], p99: [] },
      { name: `websockify ${packageVersion('websockify')}`, url: async () => `ws://127.0.0.1:${wsPort}/`, pid: websockify.pid!, down: [], up: [], downCpu: [], upCpu: [], p50: [], p99: [] },
    ];
    const bytes = P.wsMB * MB;
    /** One transfer on a fresh connection: MB/s and the proxy's CPU ms/MB (sampled while the client is connected). */
    const transfer = async (path: WsPath, direction: 'down' | 'up'): Promise<[number, number]> => {
      const client = await RawWebSocketClient.open(await path.url());
      const before = treeCpuSeconds(path.pid);
      const seconds = direction === 'down' ? await client.flood(bytes) : await client.sink(bytes);
      const cpu = treeCpuSeconds(path.pid) - before;
      client.close();
      await sleep(300);
      return [P.wsMB / seconds, (cpu * 1000) / P.wsMB];
    };
    for (const path of paths) {
      for (let i = 0; i < P.warmRuns; i++) {
        const [down] = await transfer(path, 'down'); // warm-up, discarded but for the first ("cold")
        const [up] = await transfer(path, 'up');
        path.coldDown ??= down;
        path.coldUp ??= up;
      }
    }
    for (let i = 0; i < P.floodRuns; i++) {
      for (const path of paths) {
        for (const direction of ['down', 'up'] as const) {
          const [rate, cpu] = await transfer(path, direction);
          path[direction].push(rate);
          path[direction === 'down' ? 'downCpu' : 'upCpu'].push(cpu);
        }
      }
    }
    for (const path of paths) {
      const client = await RawWebSocketClient.open(await path.url());
      path.rtt = client;
      cleanups.push(() => client.close());
      await client.roundTrips(P.warmRtts);
    }
    for (let round = 0; round < P.rounds; round++) {
      for (const path of paths) {
        const times = await path.rtt!.roundTrips(P.rtts);
        path.p50.push(quantile(times, 0.5));
        path.p99.push(quantile(times, 0.99));
      }
    }
    for (const path of paths) path.rtt!.close();
    await sleep(300);
    const [ours, theirs] = paths as [WsPath, WsPath];
    report.push(
      `${P.wsMB} MB each way per run, ${P.floodRuns} runs per path and direction after ${P.warmRuns} warm-up run(s), interleaved, each on a fresh connection (cold: the first warm-up run). The client is a minimal WebSocket client written for this (test/bench/raw-websocket.ts: payload bytes counted in place, client frames masked once and re-sent), so the proxies, not the client, are the limit. ` +
        `Round trips: ${P.rounds} rounds of ${P.rtts} 1-byte echoes after ${P.warmRtts} warm-up ones, medians over rounds. ` +
        'CPU is the proxy\'s (the relay process\'s threads; websockify and its per-client fork) per MB moved. numpy ' +
        `${numpy ? 'is' : 'is not'} installed for websockify.\n`,
    );
    report.push(
      '| path | server → client MB/s | min–max | cold | client → server MB/s | min–max | cold | RTT p50 ms | RTT p99 ms (min–max) | CPU ms/MB s→c | CPU ms/MB c→s |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const p of paths) {
      report.push(`| ${p.name} | ${fmt(median(p.down))} | ${spread(p.down)} | ${fmt(p.coldDown ?? Number.NaN)} | ${fmt(median(p.up))} | ${spread(p.up)} | ${fmt(p.coldUp ?? Number.NaN)} | ${fmt(median(p.p50), 3)} | ${fmt(median(p.p99), 3)} (${spread(p.p99, 3)}) | ${fmt(median(p.downCpu))} | ${fmt(median(p.upCpu))} |`);
    }
    report.push(
      `| **ratio relay / websockify** | ${ratio(median(ours.down), median(theirs.down))} | | ${ratio(ours.coldDown ?? Number.NaN, theirs.coldDown ?? Number.NaN)} | ${ratio(median(ours.up), median(theirs.up))} | | ${ratio(ours.coldUp ?? Number.NaN, theirs.coldUp ?? Number.NaN)} | ${ratio(median(ours.p50), median(theirs.p50))} | ${ratio(median(ours.p99), median(theirs.p99))} | ${ratio(median(ours.downCpu), median(theirs.downCpu))} | ${ratio(median(ours.upCpu), median(theirs.upCpu))} |`,
    );
    for (const [label, key] of [['server → client', 'down'], ['client → server', 'up']] as const) {
      targets.push({ target: `WebSocket VNC throughput ≥ 1.2× websockify (${label})`, measured: `${fmt(median(ours[key]))} vs ${fmt(median(theirs[key]))} MB/s (${ratio(median(ours[key]), median(theirs[key]))})`, met: median(ours[key]) >= 1.2 * median(theirs[key]) });
    }
    targets.push({ target: 'WebSocket VNC p99 round trip lower than websockify', measured: `${fmt(median(ours.p99), 3)} vs ${fmt(median(theirs.p99), 3)} ms`, met: median(ours.p99) < median(theirs.p99) });
    for (const [label, key] of [['server → client', 'downCpu'], ['client → server', 'upCpu']] as const) {
      targets.push({ target: `less proxy CPU per MB than websockify (${label})`, measured: `${fmt(median(ours[key]))} vs ${fmt(median(theirs[key]))} ms/MB`, met: median(ours[key]) < median(theirs[key]) });
    }

    // ssh -L: the relay's vnc:5900 forward vs OpenSSH's forward to the same kind of socket.
    const forwards: Array<{ name: string; port: number; user: string; destination: string; pid: number; rates: number[]; cpu: number[] }> = [
      { name: 'relay `ssh -L …:vnc:5900`', port: relay.sshPort, user: accessId, destination: 'vnc:5900', pid: relay.child.pid!, rates: [], cpu: [] },
      { name: 'sshd `ssh -L …:<socket>`', port: sshdPort, user: sshdUser, destination: consoles.vnc!.path, pid: sshd.pid, rates: [], cpu: [] },
    ];
    const locals: number[] = [];
    for (const forward of forwards) {
      const local = await freePort();
      locals.push(local);
      const ssh = spawnLocalForward({ port: forward.port, user: forward.user, key: key.privateKeyPath, localPort: local, destination: forward.destination });
      cleanups.push(() => ssh.kill('SIGKILL'));
      await waitForPort(local);
    }
    const forwardRun = async (forward: (typeof forwards)[0], local: number): Promise<[number, number]> => {
      const socket = await new Promise<ByteClient>((resolve, reject) => {
        const s = connect({ port: local, host: '127.0.0.1' });
        s.once('connect', () => resolve({ stream: s, close: () => s.destroy() }));
        s.once('error', reject);
      });
      const before = treeCpuSeconds(forward.pid);
      const seconds = await floodSeconds(socket.stream, bytes);
      const cpu = treeCpuSeconds(forward.pid) - before;
      socket.close();
      await sleep(300);
      return [P.wsMB / seconds, (cpu * 1000) / P.wsMB];
    };
    for (let w = 0; w < P.warmRuns; w++) for (const [i, forward] of forwards.entries()) await forwardRun(forward, locals[i]!); // warm-up
    for (let run = 0; run < P.floodRuns; run++) {
      for (const [i, forward] of forwards.entries()) {
        const [rate, cpu] = await forwardRun(forward, locals[i]!);
        forward.rates.push(rate);
        forward.cpu.push(cpu);
      }
    }
    report.push('\nServer → client through an OpenSSH client\'s local forward (the same client for both), same runs and warm-up as above.\n');
    report.push('| forward | MB/s median | min–max | server CPU ms/MB |', '|---|---|---|---|');
    for (const forward of forwards) report.push(`| ${forward.name} | ${fmt(median(forward.rates))} | ${spread(forward.rates)} | ${fmt(median(forward.cpu))} |`);
    report.push(`| **ratio relay / OpenSSH** | ${ratio(median(forwards[0]!.rates), median(forwards[1]!.rates))} | | ${ratio(median(forwards[0]!.cpu), median(forwards[1]!.cpu))} |`);
  });

  await section('5. Scale: many serial sessions on one relay process, each on its own VM', async () => {
    report.push('| sessions | state | relay RSS before → after (MiB) | RSS per session (KiB) | relay CPU (% of one core) | setup rate (sessions/s) | probe echo p99 under load (ms) |', '|---|---|---|---|---|---|---|');
    const counts = [...P.idle.map((n) => [n, 'idle'] as const), [P.active, 'active ~1 KB/s each'] as const];
    for (const [count, state] of counts) {
      const fakes: FakeConsole[] = [];
      for (let i = 0; i < count; i++) fakes.push(await startFakeConsole(join(tmp.path, `s${count}-${state[0]}-${i}.sock`), 1024));
      cleanups.push(() => fakes.forEach((f) => f.close()));
      const scaleRelay = await relayWith(fakes.map((f, i) => ({ name: `vm${i}`, serial: f.path })), `scale-${count}-${state[0]}`);
      const ids: string[] = [];
      for (let i = 0; i < count; i++) ids.push((await scaleRelay.api('PUT', `/v1/virtualMachines/vm${i}/console`, { enabled: true, sshPublicKey: { keyData: key.publicKey } })).body.virtualMachineAccessId);
      await sleep(2000);
      const rssBefore = rssKiB(scaleRelay.child.pid!);
      const clients: ByteClient[] = [];
      const started = Date.now();
      for (let i = 0; i < count; i += 50) {
        clients.push(...(await Promise.all(ids.slice(i, i + 50).map((id) => ssh2Client(scaleRelay.sshPort, id, key.privateKeyPath)))));
      }
      const setupRate = count / ((Date.now() - started) / 1000);
      for (const client of clients) client.stream.resume();
      let timer: NodeJS.Timeout | undefined;
      if (state !== 'idle') {
        const payload = Buffer.alloc(100, 0x62);
        let next = 0;
        // 100 bytes every 100 ms per session, spread over the interval: ~1 KB/s each way each.
        const loaded = clients.slice(1); // clients[0] is kept quiet for the latency probe
        timer = setInterval(() => {
          for (let k = 0; k < Math.ceil(loaded.length / 10); k++) loaded[next++ % loaded.length]!.stream.write(payload);
        }, 10);
      }
      await sleep(3000);
      const cpuBefore = treeCpuSeconds(scaleRelay.child.pid!);
      await sleep(5000);
      const cpuPercent = ((treeCpuSeconds(scaleRelay.child.pid!) - cpuBefore) / 5) * 100;
      const rssAfter = rssKiB(scaleRelay.child.pid!);
      let probeP99 = Number.NaN;
      if (state !== 'idle') {
        // The probe: 1-byte round trips on a quiet session while all the others keep sending.
        probeP99 = quantile(await roundTrips(clients[0]!.stream, Math.min(500, P.rtts)), 0.99);
      }
      clearInterval(timer);
      report.push(`| ${count} | ${state} | ${fmt(rssBefore / 1024)} → ${fmt(rssAfter / 1024)} | ${fmt((rssAfter - rssBefore) / count)} | ${fmt(cpuPercent)} | ${fmt(setupRate)} | ${fmt(probeP99, 3)} |`);
      if (state === 'idle' && count === Math.max(...P.idle)) {
        targets.push({ target: `${count} idle sessions at ≤ 64 KB RSS per session`, measured: `${fmt((rssAfter - rssBefore) / count)} KiB`, met: (rssAfter - rssBefore) / count <= 64 });
      }
      for (const client of clients) client.close();
      await scaleRelay.stop();
      for (const fake of fakes) fake.close();
    }
    report.push('\nRSS before is the relay with every VM attached and its consoles created, before any session; relay CPU counts all its threads (schedstat); the client side (ssh2) runs in the benchmark process on the same two cores.');
  });

  await section(`6. Memory under a slow reader (${P.slowReaderS} s)`, async () => {
    const client = await ssh2Client(relay.sshPort, endlessId, key.privateKeyPath);
    const samples: number[] = [rssKiB(relay.child.pid!)];
    client.stream.resume();
    client.stream.write(Buffer.from([0x01]));
    await sleep(500);
    client.stream.pause();
    for (let s = 0; s < P.slowReaderS; s++) {
      await sleep(1000);
      samples.push(rssKiB(relay.child.pid!));
    }
    client.close();
    report.push('The reader triggers an endless flood, reads it for 0.5 s, then stops reading; relay RSS sampled every second.\n');
    const growth = (samples.at(-1)! - samples[1]!) / 1024;
    report.push(`RSS (MiB): start ${fmt(samples[0]! / 1024)}, max ${fmt(Math.max(...samples) / 1024)}, end ${fmt(samples.at(-1)! / 1024)}; growth after the first second of pause: ${fmt(growth)} MiB.`);
    targets.push({ target: 'bounded memory under a slow reader', measured: `${fmt(growth)} MiB growth over ${P.slowReaderS - 1} s of pause`, met: growth < 16 });
  });

  await section(`7. Under a flood: the first console byte while ${P.flood} idle connections are thrown at the SSH port`, async () => {
    // Both servers with their default pre-authentication limits: the relay's (ssh.maxStartups 10:30:100,
    // ssh.perSourceMaxStartups 8, ssh.loginGraceTime 60 s) and OpenSSH's (MaxStartups 10:30:100, LoginGraceTime 120 s).
    const floodConsoles = await Promise.all(['flood-relay', 'flood-sshd'].map((name) => startFakeConsole(join(tmp.path, `${name}.sock`), 1024)));
    cleanups.push(() => floodConsoles.forEach((c) => c.close()));
    const floodRelay = await relayWith([{ name: 'flood', serial: floodConsoles[0]!.path }], 'flood', true);
    const floodId = (await floodRelay.api('PUT', '/v1/virtualMachines/flood/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } })).body.virtualMachineAccessId as string;
    const floodSshd = await startSshd(join(tmp.path, 'sshd-flood'), await freePort(), key.publicKey, { defaultLimits: true });
    cleanups.push(floodSshd.stop);
    const servers = [
      { name: 'relay', port: floodRelay.sshPort, user: floodId, command: undefined as string | undefined, pid: floodRelay.child.pid! },
      { name: 'OpenSSH sshd + socat', port: floodSshd.port, user: sshdUser, command: floodConsoles[1]!.path, pid: floodSshd.pid },
    ];
    report.push(
      `The flood: ${P.flood} TCP connections from 127.0.0.1 that never send a byte, opened 250 at a time and held (not re-opened when dropped). The user: OpenSSH \`ssh\` from 127.0.0.2, retrying 200 ms after each refused attempt as a person would, ${P.floodClientRuns} times in a row, each given ${P.floodDeadlineS} s. Each server alone with its own flood; both with their default limits (relay: \`ssh.maxStartups\` 10:30:100, \`ssh.perSourceMaxStartups\` 8, \`ssh.loginGraceTime\` 60 s; OpenSSH ${version('ssh', ['-V']).replace(/,.*/, '')}: \`MaxStartups 10:30:100\`, \`LoginGraceTime 120\`, no \`PerSourceMaxStartups\` before 9.8).\n`,
      '| server | no flood: first byte, median (ms) | under the flood: first byte, median (min–max) (ms) | attempts per session | flood connections still held (of ' + P.flood + ') | server RSS under the flood (MiB) | vs no flood |',
      '|---|---|---|---|---|---|---|',
    );
    const underFlood: Record<string, number | undefined> = {};
    for (const server of servers) {
      const quiet: number[] = [];
      for (let i = 0; i < P.setupRuns; i++) {
        quiet.push(await opensshSetup(server.port, server.user, key.privateKeyPath, server.command, { bindAddress: '127.0.0.2' }));
        await sleep(100);
      }
      const attack = idleFlood(server.port, P.flood);
      cleanups.push(() => attack.destroy());
      await attack.done;
      await sleep(1000);
      const held = attack.closedAt.filter((closed) => closed === undefined).length;
      const rss = treeRssKiB(server.pid);
      const runs: number[] = [];
      let attempts = 0;
      let failed = 0;
      for (let i = 0; i < P.floodClientRuns && failed === 0; i++) {
        const result = await opensshSetupRetrying(server.port, server.user, key.privateKeyPath, server.command, '127.0.0.2', P.floodDeadlineS * 1000);
        attempts += result.attempts;
        if (result.ms === undefined) failed++;
        else runs.push(result.ms);
        await sleep(100);
      }
      attack.destroy();
      await sleep(2000);
      const sessions = runs.length + failed;
      underFlood[server.name] = runs.length > 0 ? median(runs) : undefined;
      const under = failed > 0 ? `**no session within ${P.floodDeadlineS} s** (${attempts} attempts, each dropped)` : `${fmt(median(runs))} (${spread(runs)})`;
      report.push(`| ${server.name} | ${fmt(median(quiet))} | ${under} | ${fmt(attempts / sessions, 1)} | ${held} | ${fmt(rss / 1024)} | ${failed > 0 ? '—' : ratio(median(runs), median(quiet))} |`);
    }
    const ours = underFlood.relay;
    const theirs = underFlood['OpenSSH sshd + socat'];
    report.push(
      '',
      `Relay / OpenSSH under the flood: ${ours !== undefined && theirs !== undefined ? ratio(ours, theirs) : ours !== undefined ? 'the relay served every session; OpenSSH served none within the deadline' : 'not comparable'}.`,
      'Held = flood sockets the server had not closed one second after the last was opened. RSS counts sshd\'s per-connection children. OpenSSH 9.2 has no per-source cap, so the flood fills all 100 of its unauthenticated slots and every other client is dropped until LoginGraceTime frees them; the relay lets one address hold 8 slots (below the start mark of 10), so clients from other addresses are never early-dropped.',
    );
    targets.push({ target: `a real client gets a console during a ${P.flood}-connection flood`, measured: ours === undefined ? 'no session' : `${fmt(ours)} ms median to the first byte`, met: ours !== undefined });
    await floodRelay.stop();
    floodSshd.stop();
  });

  await section('8. Fleet: one VM through gateway → agent against a standalone relay', () =>
    fleetSection({
      P,
      dir: tmp.path,
      key,
      standaloneWith: (vms) => relayWith(vms, `standalone-${Date.now()}`),
      report,
      targets,
      cleanups,
    }),
  );

  await section('9. The lifeline CLI: connect against ssh typed by hand', () =>
    cliSection({ runs: P.setupRuns, dir: tmp.path, key, relay, vm: 'bench', accessId, report, targets }),
  );

  const cpu = cpus()[0]?.model ?? 'unknown';
  const header = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${new Date().toISOString()}.`,
    '',
    `- Machine: ${cpus().length} cores, ${cpu}, ${fmt(totalmem() / 1024 ** 3)} GiB RAM, Linux ${release()}`,
    `- Node ${process.version}; relay ${JSON.parse(readFileSync(join(REPO_ROOT, 'relay', 'package.json'), 'utf8')).version}; ${version('ssh', ['-V'])}; socat ${packageVersion('socat')}; websockify ${packageVersion('websockify')} (Debian packages)`,
    `- Mode: ${quick ? 'quick (smaller sizes and fewer runs; a smoke check)' : 'full'}`,
    '',
    '**Method.** Everything runs on loopback on this machine, in one run. The console is a small',
    'unix-socket server that behaves like QEMU\'s serial chardev (one client at a time; echo, and a',
    'flood on Ctrl-A), so the relay is measured, not an emulated guest. The OpenSSH peer is Debian\'s',
    '`sshd` with its own config and port reaching the same kind of socket through',
    '`socat - UNIX-CONNECT:<sock>`; the WebSocket peer is Debian\'s `websockify --unix-target`.',
    'Ratios are relay / peer: above 1 is better for throughput, below 1 is better for times.',
  ];
  const summary = [
    '',
    '## Against the targets',
    '',
    '| target | measured | met |',
    '|---|---|---|',
    ...targets.map((t) => `| ${t.target} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`),
    '',
    '**Reading the figures.** This is a 2-core virtual machine shared with other tenants: figures',
    'move by tens of percent from one minute to the next, which is why the paths are interleaved,',
    'each figure is a median with its spread, and ratios (taken minutes apart at most) matter more',
    'than absolute MB/s. Every process here (clients, servers, the benchmark) shares the two cores.',
    '',
    '- *Setup:* sshd forks, execs and starts socat per session; the relay keeps each VM\'s console',
    '  attached and a session only attaches to it, so it wins by an order of magnitude.',
    '- *Keystrokes:* warm, the relay adds about what sshd+socat add. The cold column is the same',
    '  measurement on the first thousands of keystrokes: V8 is still compiling the hot path then.',
    '- *Serial and `ssh -L` throughput* are bounded by SSH itself: OpenSSH\'s client decrypting',
    '  chacha20-poly1305 in one thread, and on the server side ssh2\'s per-packet work (a fresh',
    '  packet buffer, random padding and a native encrypt call per 32 KiB packet, the client\'s',
    '  packet size). Server CPU per MB is the fairer comparison of the two servers, with one',
    '  caveat: about half of relay processes fall into a mode of frequent full collections on',
    '  this flood and then need 2–2.5× the CPU per MB (performance.md, "What remains").',
    '- *WebSocket:* with a client that costs almost nothing, both proxies spend most of their time',
    '  in the kernel copying 64 KiB reads and writes; the relay reads the VM\'s screen into pooled',
    '  buffers and sends each read as one message.',
    '- *Flood:* both servers keep their default limits. OpenSSH 9.2 lets one address fill all 100',
    '  unauthenticated slots, so it drops everyone until LoginGraceTime (120 s) frees them; the relay',
    '  caps one address at 8 (below its start mark of 10), so others are never early-dropped.',
    '- *Fleet:* every console byte crosses one more process and one more SSH encryption (agent →',
    '  gateway over the tunnel), and here the client, two gateways, the agent, PostgreSQL and the',
    '  consoles share two cores: bulk throughput is well below a standalone relay\'s and server CPU per',
    '  MB is the gateway\'s plus the agent\'s. Profiles of the WebSocket path show both fleet processes',
    '  spending their time in socket writes, ssh2\'s per-packet work (random padding, one encrypt call',
    '  per 32 KiB packet, a size ssh2 fixes) and decryption. Setup, keystrokes, session rate and',
    '  revocation are within their targets.',
    '',
    'How the relay was profiled, what was fixed, and what remains and why: [performance.md](performance.md).',
    'Reproduce one scenario under the profiler with `npm run bench:profile -- <serial|ws|ws-up|rtt> [MB] [runs]`.',
  ];
  const text = `${[...header, ...summary, ...report].join('\n')}\n`;
  if (only || quick) {
    // A partial or quick run must not replace the published figures.
    process.stdout.write(text);
    return;
  }
  writeFileSync(join(REPO_ROOT, 'docs', 'benchmarks.md'), text);
  log('bench: wrote docs/benchmarks.md');
}

try {
  for (const tool of ['ssh', 'socat', 'websockify', '/usr/sbin/sshd']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`missing ${tool}: sudo apt-get install openssh-client openssh-server socat websockify`);
  }
  await main();
  if (failures.length > 0) {
    log(`bench: not measured: ${failures.join('; ')}`);
    process.exitCode = 1;
  }
} finally {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch {
      // keep cleaning
    }
  }
  tmp.dispose();
}
