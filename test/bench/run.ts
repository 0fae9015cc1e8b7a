/**
 * `npm run bench [-- --quick]`: the relay side by side with OpenSSH sshd+socat and websockify,
 * on loopback, in one run; writes docs/benchmarks.md. Not part of `npm test`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKey } from '../helpers/openssh.js';
import { REPO_ROOT, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { directClient, floodSeconds, negotiatedCipher, opensshSetup, opensshThroughput, roundTrips, ssh2Client, wsClient, type ByteClient } from './clients.js';
import { startFakeConsole, type FakeConsole } from './fake-console.js';
import { fmt, median, quantile, ratio, spread } from './stats.js';
import { startSshd } from './sshd-peer.js';

const quick = process.argv.includes('--quick');
const P = quick
  ? { setupRuns: 5, rtts: 300, floodMB: 20, floodRuns: 2, idle: [200], active: 100, slowReaderS: 5, wsMB: 20 }
  : { setupRuns: 15, rtts: 3000, floodMB: 200, floodRuns: 3, idle: [1000, 5000], active: 1000, slowReaderS: 30, wsMB: 200 };
const MB = 1024 * 1024;
const tmp = tempDir('bench');
const cleanups: Array<() => unknown> = [];
const report: string[] = [];
/** Each target of the issue, with what was measured and whether it was met. */
const targets: Array<{ target: string; measured: string; met: boolean }> = [];
const log = (line: string): void => void process.stderr.write(`${line}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** User + system CPU seconds of a process and its live children (websockify forks one per client). */
function cpuSeconds(pid: number): number {
  let total = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    total = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100; // own + waited-for children, 10 ms ticks
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) total += cpuSeconds(Number(child));
  } catch {
    // The process ended.
  }
  return total;
}

function packageVersion(name: string): string {
  return spawnSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8' }).stdout.trim() || 'unknown';
}

function version(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0] ?? 'unknown';
}

async function relayWith(vms: Array<{ name: string; serial?: string; vnc?: string }>, name: string): Promise<RelayProcess> {
  const dataDir = join(tmp.path, `${name}-data`);
  const configPath = join(tmp.path, `${name}.json`);
  writeFileSync(configPath, JSON.stringify({ dataDir, api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, consoles: { defaultTtl: '24h', maxTtl: '30d' }, virtualMachines: vms }));
  const relay = await startRelay(configPath, dataDir);
  cleanups.push(() => relay.stop());
  return relay;
}

async function section(title: string, body: () => Promise<void>): Promise<void> {
  log(`bench: ${title}`);
  report.push(`\n## ${title}\n`);
  let timer: NodeJS.Timeout | undefined;
  try {
    const limitMs = (quick ? 3 : 15) * 60_000;
    await Promise.race([body(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${limitMs / 60_000} min`)), limitMs)))]);
  } catch (error) {
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
  const relayCipher = await negotiatedCipher(relay.sshPort, accessId, key.privateKeyPath);
  // A command that fails at once: the cipher is negotiated before it runs, and no socat stays on the console.
  const sshdCipher = await negotiatedCipher(sshdPort, 'root', key.privateKeyPath, `${sshdSock}.none`);

  await section('1. Session setup (start of the client to the first console byte)', async () => {
    const relayRuns: number[] = [];
    const sshdRuns: number[] = [];
    const ssh2Runs: number[] = [];
    for (let i = 0; i < P.setupRuns; i++) {
      relayRuns.push(await opensshSetup(relay.sshPort, accessId, key.privateKeyPath));
      await sleep(100);
      sshdRuns.push(await opensshSetup(sshdPort, 'root', key.privateKeyPath, sshdSock));
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
    const rows: Array<[string, number[]]> = [];
    const direct = await directClient(consoles.direct!.path);
    rows.push(['direct unix socket', await roundTrips(direct.stream, P.rtts)]);
    direct.close();
    const viaRelay = await ssh2Client(relay.sshPort, accessId, key.privateKeyPath);
    rows.push(['relay (ssh2 client)', await roundTrips(viaRelay.stream, P.rtts)]);
    viaRelay.close();
    const viaSshd = await ssh2Client(sshdPort, 'root', key.privateKeyPath, sshdSock);
    rows.push(['sshd + socat (ssh2 client)', await roundTrips(viaSshd.stream, P.rtts)]);
    viaSshd.close();
    const base = rows[0]![1];
    report.push(`${P.rtts} sequential round trips each; the same ssh2 client for both SSH paths. ms.\n`, '| path | p50 | p99 | added p99 over direct |', '|---|---|---|---|');
    for (const [name, times] of rows) report.push(`| ${name} | ${fmt(quantile(times, 0.5), 3)} | ${fmt(quantile(times, 0.99), 3)} | ${fmt(quantile(times, 0.99) - quantile(base, 0.99), 3)} |`);
    const added = quantile(rows[1]![1], 0.99) - quantile(base, 0.99);
    targets.push({ target: 'added p99 keystroke latency ≤ 1 ms over direct', measured: `${fmt(added, 3)} ms (sshd+socat: ${fmt(quantile(rows[2]![1], 0.99) - quantile(base, 0.99), 3)} ms)`, met: added <= 1 });
  });

  await section(`3. Serial throughput (${P.floodMB} MB of console output)`, async () => {
    const rows: Array<[string, number[]]> = [['direct unix socket', []], [`relay (OpenSSH ssh, ${relayCipher})`, []], [`sshd + socat (OpenSSH ssh, ${sshdCipher})`, []]];
    for (let i = 0; i < P.floodRuns; i++) {
      const direct = await directClient(consoles.direct!.path);
      rows[0]![1].push(P.floodMB / (await floodSeconds(direct.stream, floodBytes)));
      direct.close();
      await sleep(300);
      rows[1]![1].push(P.floodMB / (await opensshThroughput(relay.sshPort, accessId, key.privateKeyPath, floodBytes)));
      await sleep(300);
      rows[2]![1].push(P.floodMB / (await opensshThroughput(sshdPort, 'root', key.privateKeyPath, floodBytes, sshdSock)));
      await sleep(300);
    }
    report.push(`${P.floodRuns} runs each. MB/s (MB = 2^20 bytes).\n`, '| path | median | min–max | vs OpenSSH path |', '|---|---|---|---|');
    for (const [name, rates] of rows) report.push(`| ${name} | ${fmt(median(rates))} | ${spread(rates)} | ${ratio(median(rates), median(rows[2]![1]))} |`);
    targets.push({ target: 'serial throughput ≥ OpenSSH path', measured: `${fmt(median(rows[1]![1]))} vs ${fmt(median(rows[2]![1]))} MB/s`, met: median(rows[1]![1]) >= median(rows[2]![1]) });
  });

  await section('4. VNC stream: WebSocket (relay vs websockify) and ssh -L (relay vs OpenSSH)', async () => {
    const wsPort = await freePort();
    const websockify: ChildProcess = spawn('websockify', [`--unix-target=${consoles.vnc!.path}`, `127.0.0.1:${wsPort}`], { stdio: 'ignore' });
    cleanups.push(() => websockify.kill('SIGTERM'));
    await sleep(1500);
    const mint = async (): Promise<string> => ((await relay.api('POST', '/v1/virtualMachines/bench/vncTokens')).body.url as string).replace(/^http/, 'ws');
    const measure = async (open: () => Promise<ByteClient>, pid: number | undefined): Promise<{ rate: number[]; p50: number; p99: number; cpuPerMB: number }> => {
      const rate: number[] = [];
      let cpu = 0;
      for (let i = 0; i < P.floodRuns; i++) {
        const client = await open();
        const before = pid ? cpuSeconds(pid) : 0;
        rate.push(P.wsMB / (await floodSeconds(client.stream, P.wsMB * MB)));
        cpu += pid ? cpuSeconds(pid) - before : 0;
        client.close();
        await sleep(300);
      }
      const client = await open();
      const rtts = await roundTrips(client.stream, P.rtts);
      client.close();
      return { rate, p50: quantile(rtts, 0.5), p99: quantile(rtts, 0.99), cpuPerMB: (cpu * 1000) / (P.wsMB * P.floodRuns) };
    };
    const ours = await measure(async () => wsClient(await mint()), relay.child.pid);
    const theirs = await measure(() => wsClient(`ws://127.0.0.1:${wsPort}/`), websockify.pid);
    report.push(`Server → client throughput of ${P.wsMB} MB (${P.floodRuns} runs), then ${P.rtts} 1-byte round trips, \`ws\` client, binary frames. CPU is the proxy process's user+system time per MB.\n`);
    report.push('| path | MB/s median | min–max | RTT p50 ms | RTT p99 ms | proxy CPU ms/MB |', '|---|---|---|---|---|---|');
    report.push(`| relay WebSocket | ${fmt(median(ours.rate))} | ${spread(ours.rate)} | ${fmt(ours.p50, 3)} | ${fmt(ours.p99, 3)} | ${fmt(ours.cpuPerMB)} |`);
    report.push(`| websockify ${packageVersion('websockify')} | ${fmt(median(theirs.rate))} | ${spread(theirs.rate)} | ${fmt(theirs.p50, 3)} | ${fmt(theirs.p99, 3)} | ${fmt(theirs.cpuPerMB)} |`);
    report.push(`| **ratio relay / websockify** | ${ratio(median(ours.rate), median(theirs.rate))} | | ${ratio(ours.p50, theirs.p50)} | ${ratio(ours.p99, theirs.p99)} | ${ratio(ours.cpuPerMB, theirs.cpuPerMB)} |`);
    targets.push({ target: 'WebSocket VNC throughput ≥ 1.2× websockify (server → client)', measured: ratio(median(ours.rate), median(theirs.rate)), met: median(ours.rate) >= 1.2 * median(theirs.rate) });
    targets.push({ target: 'WebSocket VNC p99 round trip lower than websockify', measured: `${fmt(ours.p99, 3)} vs ${fmt(theirs.p99, 3)} ms`, met: ours.p99 < theirs.p99 });
    targets.push({ target: 'less proxy CPU per MB than websockify', measured: `${fmt(ours.cpuPerMB)} vs ${fmt(theirs.cpuPerMB)} ms/MB`, met: ours.cpuPerMB < theirs.cpuPerMB });

    // ssh -L: the relay's vnc:5900 forward vs OpenSSH's forward to the same kind of socket.
    const forwards: Array<[string, string[]]> = [
      ['relay `ssh -L …:vnc:5900`', ['-p', String(relay.sshPort), `${accessId}@127.0.0.1`]],
      ['sshd `ssh -L …:<socket>`', ['-p', String(sshdPort), 'root@127.0.0.1']],
    ];
    report.push('\n| forward | MB/s median | min–max |', '|---|---|---|');
    const rates: number[][] = [];
    for (const [name, target] of forwards) {
      const local = await freePort();
      const destination = name.startsWith('relay') ? 'vnc:5900' : consoles.vnc!.path;
      const ssh = spawn('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ExitOnForwardFailure=yes', '-i', key.privateKeyPath, '-N', '-L', `127.0.0.1:${local}:${destination}`, ...target], { stdio: 'ignore' });
      cleanups.push(() => ssh.kill('SIGKILL'));
      await sleep(1500);
      const runs: number[] = [];
      for (let i = 0; i < P.floodRuns; i++) {
        const socket = await new Promise<ByteClient>((resolve, reject) => {
          const s = connect({ port: local, host: '127.0.0.1' });
          s.once('connect', () => resolve({ stream: s, close: () => s.destroy() }));
          s.once('error', reject);
        });
        runs.push(P.wsMB / (await floodSeconds(socket.stream, P.wsMB * MB)));
        socket.close();
        await sleep(300);
      }
      rates.push(runs);
      report.push(`| ${name} | ${fmt(median(runs))} | ${spread(runs)} |`);
      ssh.kill('SIGKILL');
    }
    report.push(`| **ratio relay / OpenSSH** | ${ratio(median(rates[0]!), median(rates[1]!))} | |`);
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
      const cpuBefore = cpuSeconds(scaleRelay.child.pid!);
      await sleep(5000);
      const cpuPercent = ((cpuSeconds(scaleRelay.child.pid!) - cpuBefore) / 5) * 100;
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
    report.push('\nRSS before is the relay with every VM attached and its consoles created, before any session; the client side (ssh2) runs in the benchmark process on the same two cores.');
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
    '**Reading the figures.** SSH session setup is dominated by key exchange and, for sshd, by',
    'its per-connection fork/exec and the socat it spawns; the relay keeps one connection per VM',
    'console open, so a session only attaches. Throughput and CPU per MB are where a single',
    'Node process pays for JavaScript framing: the relay encrypts SSH with ssh2 (OpenSSL',
    'ciphers via Node crypto, but packet handling in JS), and frames WebSocket messages with',
    '`ws`, while websockify with numpy and OpenSSH do that work in C. Where a target is not met,',
    'the next step is a `--cpu-prof` of the relay under the flood (`node --cpu-prof',
    'relay/bin/lifeline-relay.js serve …`) to see how much is ours (buffer copies, per-chunk',
    'bookkeeping) and how much is ws/ssh2. The websockify CPU column counts its process tree',
    '(it forks per client) while the client is connected.',
  ];
  writeFileSync(join(REPO_ROOT, 'docs', 'benchmarks.md'), `${[...header, ...summary, ...report].join('\n')}\n`);
  log('bench: wrote docs/benchmarks.md');
}

try {
  for (const tool of ['ssh', 'socat', 'websockify', '/usr/sbin/sshd']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`missing ${tool}: sudo apt-get install openssh-client openssh-server socat websockify`);
  }
  await main();
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
