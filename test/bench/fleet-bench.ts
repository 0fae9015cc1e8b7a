import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientChannel } from 'ssh2';
import { startFleet } from '../helpers/fleet.js';
import type { KeyPair } from '../helpers/openssh.js';
import { treeCpuSeconds } from '../helpers/proc.js';
import type { RelayProcess } from '../helpers/relay-process.js';
import { opensshSetup, opensshThroughput, roundTrips, ssh2Client } from './clients.js';
import { startFakeConsole } from './fake-console.js';
import { RawWebSocketClient } from './raw-websocket.js';
import { fmt, median, quantile, ratio, spread } from './stats.js';

/** What the fleet section needs of the benchmark run. */
export interface FleetBenchContext {
  P: { setupRuns: number; rtts: number; rounds: number; warmRtts: number; floodMB: number; floodRuns: number; wsMB: number };
  dir: string;
  key: KeyPair;
  /** A standalone relay of its own for these VMs (stopped by the run's cleanups). */
  standaloneWith(vms: Array<{ name: string; serial: string; vnc?: string }>): Promise<RelayProcess>;
  report: string[];
  targets: Array<{ target: string; measured: string; met: boolean }>;
  cleanups: Array<() => unknown>;
}

const MB = 1024 * 1024;

/** Opens `count` serial sessions (connect, authenticate, shell, first echoed byte) `concurrency` at a time; sessions per second. */
async function sessionsPerSecond(targets: Array<{ port: number; user: string }>, key: string, count: number, concurrency: number): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const target = targets[next++ % targets.length]!;
      const client = await ssh2Client(target.port, target.user, key);
      await new Promise<void>((resolve) => {
        client.stream.once('data', () => resolve());
        client.stream.write('x');
      });
      client.close();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

/**
 * ms from sending a disable (`change`) to the close of a session held on `sessionPort`, `rounds`
 * times. From the request, not its answer: the relay closes sessions before it answers, so "commit →
 * closed" would read negative; this includes the API round trip and the commit.
 */
async function revocations(sessionPort: number, user: string, key: string, change: (enabled: boolean) => Promise<void>, rounds: number): Promise<number[]> {
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const client = await ssh2Client(sessionPort, user, key);
    await roundTrips(client.stream, 3, 0);
    const closed = new Promise<bigint>((resolve) => (client.stream as ClientChannel).once('close', () => resolve(process.hrtime.bigint())));
    const sent = process.hrtime.bigint();
    await change(false);
    times.push(Number((await closed) - sent) / 1e6);
    client.close();
    await change(true);
    await sleep(100);
  }
  return times;
}

/**
 * Section 8: one VM through gateway → agent (two gateways and an agent as separate processes on
 * PostgreSQL) against the same kind of VM on the run's standalone relay, interleaved: session
 * setup, keystroke p99, serial and WebSocket VNC throughput, sessions per second, revocation latency.
 */
export async function fleetSection(ctx: FleetBenchContext): Promise<void> {
  const { P, dir, key, report, targets, cleanups, standaloneWith } = ctx;
  const floodBytes = P.floodMB * MB;
  const serial = await startFakeConsole(join(dir, 'fleet-serial.sock'), floodBytes);
  const vnc = await startFakeConsole(join(dir, 'fleet-vnc.sock'), P.wsMB * MB, true);
  // The standalone side gets a relay of its own, fresh like the fleet's processes, with the same consoles.
  const standaloneSerial = await startFakeConsole(join(dir, 'standalone-serial.sock'), floodBytes);
  const standaloneVnc = await startFakeConsole(join(dir, 'standalone-vnc.sock'), P.wsMB * MB, true);
  const echoes = await Promise.all(Array.from({ length: 8 }, (_, index) => startFakeConsole(join(dir, `fleet-echo-${index}.sock`), 0)));
  const standaloneEchoes = await Promise.all(Array.from({ length: 8 }, (_, index) => startFakeConsole(join(dir, `standalone-echo-${index}.sock`), 0)));
  for (const console of [serial, vnc, standaloneSerial, standaloneVnc, ...echoes, ...standaloneEchoes]) cleanups.push(() => console.close());
  mkdirSync(join(dir, 'fleet'));
  const fleet = await startFleet(join(dir, 'fleet'), 2);
  cleanups.push(() => fleet.dispose());
  const agent = await fleet.addAgent('hv-bench', {
    virtualMachines: [{ name: 'fbench', serial: serial.path, vnc: vnc.path }, ...echoes.map((echo, index) => ({ name: `echo-${index}`, serial: echo.path }))],
  });
  await fleet.waitForAgent('hv-bench');
  const [gw1, gw2] = fleet.gateways as [RelayProcess, RelayProcess];
  const put = async (relay: RelayProcess, vm: string): Promise<string> => (await relay.api('PUT', `/v1/virtualMachines/${vm}/console`, { enabled: true, sshPublicKey: { keyData: key.publicKey } })).body.virtualMachineAccessId as string;
  const accessId = await put(gw1, 'fbench');
  const echoIds = await Promise.all(echoes.map((_, index) => put(gw1, `echo-${index}`)));
  const many = await standaloneWith([{ name: 'sbench', serial: standaloneSerial.path, vnc: standaloneVnc.path }, ...standaloneEchoes.map((echo, index) => ({ name: `sa-echo-${index}`, serial: echo.path }))]);
  const standaloneIds = await Promise.all(standaloneEchoes.map((_, index) => put(many, `sa-echo-${index}`)));
  const standalone = {
    relay: many,
    accessId: await put(many, 'sbench'),
    mintUrl: async (): Promise<string> => ((await many.api('POST', '/v1/virtualMachines/sbench/vncTokens')).body.url as string).replace(/^http/, 'ws'),
  };
  const fleetCpu = (): number => treeCpuSeconds(gw1.child.pid!) + treeCpuSeconds(agent.child.pid!);

  // Setup.
  const setup = { standalone: [] as number[], fleet: [] as number[] };
  for (let run = 0; run < P.setupRuns; run++) {
    setup.standalone.push(await opensshSetup(standalone.relay.sshPort, standalone.accessId, key.privateKeyPath));
    await sleep(100);
    setup.fleet.push(await opensshSetup(gw1.sshPort, accessId, key.privateKeyPath));
    await sleep(100);
  }

  // Keystrokes: warm both paths, then interleaved rounds.
  const rttClients = [await ssh2Client(standalone.relay.sshPort, standalone.accessId, key.privateKeyPath), await ssh2Client(gw1.sshPort, accessId, key.privateKeyPath)];
  for (const client of rttClients) await roundTrips(client.stream, P.warmRtts);
  const p99 = [[], []] as [number[], number[]];
  const p50 = [[], []] as [number[], number[]];
  for (let round = 0; round < P.rounds; round++) {
    for (const [index, client] of rttClients.entries()) {
      const times = await roundTrips(client.stream, P.rtts, 20);
      p50[index]!.push(quantile(times, 0.5));
      p99[index]!.push(quantile(times, 0.99));
    }
  }
  for (const client of rttClients) client.close();
  await sleep(300);

  // Serial throughput through OpenSSH, CPU of the relay vs gateway + agent.
  const serialRates = { standalone: [] as number[], fleet: [] as number[], standaloneCpu: [] as number[], fleetCpu: [] as number[] };
  for (let run = 0; run < P.floodRuns + 1; run++) {
    const a = await opensshThroughput(standalone.relay.sshPort, standalone.accessId, key.privateKeyPath, floodBytes, undefined, () => treeCpuSeconds(standalone.relay.child.pid!));
    await sleep(300);
    const b = await opensshThroughput(gw1.sshPort, accessId, key.privateKeyPath, floodBytes, undefined, fleetCpu);
    await sleep(300);
    if (run === 0) continue; // warm-up
    serialRates.standalone.push(P.floodMB / a.seconds);
    serialRates.fleet.push(P.floodMB / b.seconds);
    serialRates.standaloneCpu.push((a.cpuSeconds * 1000) / P.floodMB);
    serialRates.fleetCpu.push((b.cpuSeconds * 1000) / P.floodMB);
  }

  // WebSocket VNC, server → client, a token minted on gateway 1 used on gateway 2.
  const gw2Vnc = (await gw2.api('GET', '/v1/relay')).body.endpoints.find((endpoint: { name: string }) => endpoint.name === 'default').vncPort as number;
  const fleetMint = async (): Promise<string> => {
    const url = new URL((await gw1.api('POST', '/v1/virtualMachines/fbench/vncTokens')).body.url as string);
    url.port = String(gw2Vnc);
    return url.toString().replace(/^http/, 'ws');
  };
  const wsBytes = P.wsMB * MB;
  const ws = { standalone: [] as number[], fleet: [] as number[] };
  for (let run = 0; run < P.floodRuns + 1; run++) {
    for (const [name, mint] of [['standalone', standalone.mintUrl], ['fleet', fleetMint]] as const) {
      const client = await RawWebSocketClient.open(await mint());
      const seconds = await client.flood(wsBytes);
      client.close();
      await sleep(300);
      if (run > 0) ws[name].push(P.wsMB / seconds);
    }
  }

  // Sessions per second: two gateways against one standalone relay, each on 8 VMs.
  const count = Math.max(40, P.setupRuns * 10);
  const standaloneRate = await sessionsPerSecond(standaloneIds.map((user) => ({ port: many.sshPort, user })), key.privateKeyPath, count, 8);
  const fleetRate = await sessionsPerSecond(echoIds.map((user, index) => ({ port: fleet.gateways[index % 2]!.sshPort, user })), key.privateKeyPath, count, 8);

  // Revocation: a disable through gateway 2 closing a session held on gateway 1; the standalone relay closing its own.
  const rounds = Math.max(5, P.setupRuns + 5);
  const change = (relay: RelayProcess, vm: string) => async (enabled: boolean): Promise<void> => {
    const response = await relay.api('PATCH', `/v1/virtualMachines/${vm}/console`, { enabled });
    if (response.status !== 200) throw new Error(`PATCH ${vm}: ${response.status} ${JSON.stringify(response.body)}`);
  };
  const revokedStandalone = await revocations(many.sshPort, standaloneIds[0]!, key.privateKeyPath, change(many, 'sa-echo-0'), rounds);
  const revokedFleet = await revocations(gw1.sshPort, echoIds[0]!, key.privateKeyPath, change(gw2, 'echo-0'), rounds);

  const setupRatio = median(setup.fleet) / median(setup.standalone);
  const addedP99 = median(p99[1]) - median(p99[0]);
  report.push(
    'Two gateways and one agent (separate processes) on a PostgreSQL 15 of their own, on loopback, the console stand-ins on the agent; beside them a standalone relay started for this section with the same consoles (a flood serial console, a VNC stand-in and 8 echo consoles). Interleaved; medians. "Server CPU" of the fleet is gateway 1 plus the agent.\n',
    '| measure | standalone relay | gateway → agent | ratio |',
    '|---|---|---|---|',
    `| session setup, OpenSSH to first byte (ms, ${P.setupRuns} runs) | ${fmt(median(setup.standalone))} (${spread(setup.standalone)}) | ${fmt(median(setup.fleet))} (${spread(setup.fleet)}) | ${ratio(median(setup.fleet), median(setup.standalone))} |`,
    `| keystroke p50 / p99 (ms, ${P.rounds}×${P.rtts} round trips) | ${fmt(median(p50[0]), 3)} / ${fmt(median(p99[0]), 3)} | ${fmt(median(p50[1]), 3)} / ${fmt(median(p99[1]), 3)} | +${fmt(addedP99, 3)} ms p99 |`,
    `| serial throughput, OpenSSH (MB/s, ${P.floodMB} MB × ${P.floodRuns}) | ${fmt(median(serialRates.standalone))} (${spread(serialRates.standalone)}) | ${fmt(median(serialRates.fleet))} (${spread(serialRates.fleet)}) | ${ratio(median(serialRates.fleet), median(serialRates.standalone))} |`,
    `| server CPU per MB of serial (ms/MB) | ${fmt(median(serialRates.standaloneCpu))} | ${fmt(median(serialRates.fleetCpu))} | ${ratio(median(serialRates.fleetCpu), median(serialRates.standaloneCpu))} |`,
    `| WebSocket VNC server → client (MB/s, ${P.wsMB} MB × ${P.floodRuns}) | ${fmt(median(ws.standalone))} (${spread(ws.standalone)}) | ${fmt(median(ws.fleet))} (${spread(ws.fleet)}) | ${ratio(median(ws.fleet), median(ws.standalone))} |`,
    `| sessions opened per second (${count}, 8 at a time, 8 VMs; the fleet across both gateways) | ${fmt(standaloneRate)} | ${fmt(fleetRate)} | ${ratio(fleetRate, standaloneRate)} |`,
    `| revocation, disable sent → client closed, p50 / p99 (ms, ${rounds} rounds; the fleet: disabled through gateway 2, held on gateway 1) | ${fmt(quantile(revokedStandalone, 0.5))} / ${fmt(quantile(revokedStandalone, 0.99))} | ${fmt(quantile(revokedFleet, 0.5))} / ${fmt(quantile(revokedFleet, 0.99))} | |`,
  );
  targets.push(
    { target: 'fleet: session setup ≤ 2× standalone', measured: `${fmt(median(setup.fleet))} vs ${fmt(median(setup.standalone))} ms (${fmt(setupRatio, 2)}×)`, met: setupRatio <= 2 },
    { target: 'fleet: added keystroke p99 ≤ 1 ms', measured: `+${fmt(addedP99, 3)} ms`, met: addedP99 <= 1 },
    { target: 'fleet: serial throughput ≥ 0.8× standalone', measured: `${fmt(median(serialRates.fleet))} vs ${fmt(median(serialRates.standalone))} MB/s (${ratio(median(serialRates.fleet), median(serialRates.standalone))})`, met: median(serialRates.fleet) >= 0.8 * median(serialRates.standalone) },
    { target: 'fleet: WebSocket VNC throughput ≥ 0.8× standalone', measured: `${fmt(median(ws.fleet))} vs ${fmt(median(ws.standalone))} MB/s (${ratio(median(ws.fleet), median(ws.standalone))})`, met: median(ws.fleet) >= 0.8 * median(ws.standalone) },
    { target: 'fleet: revocation p99 ≤ 1 s', measured: `${fmt(quantile(revokedFleet, 0.99))} ms`, met: quantile(revokedFleet, 0.99) <= 1000 },
  );
}
