import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { terminate } from '../shared/terminate.js';
import { defaultCacheDir, ensureLabImage, findQemu, LabError } from './lab-image.js';

export { LabError } from './lab-image.js';

export interface LabUpOptions {
  dir: string;
  count: number;
  cacheDir?: string;
  progress?: (line: string) => void;
}

export interface LabVm {
  name: string;
  dir: string;
  serial: string;
  vnc: string;
  qmp: string;
  pidFile: string;
}

function labVm(dir: string, index: number): LabVm {
  const name = `lab-${index}`;
  const vmDir = join(dir, name);
  return {
    name,
    dir: vmDir,
    serial: join(vmDir, 'serial.sock'),
    vnc: join(vmDir, 'vnc.sock'),
    qmp: join(vmDir, 'qmp.sock'),
    pidFile: join(vmDir, 'qemu.pid'),
  };
}

/** The QEMU process a pid file names, if it is still running that VM (its command line names the pid file). */
function runningPid(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('qemu-system') && cmdline.split('\0').includes(pidFile) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function labVms(dir: string): LabVm[] {
  const absolute = resolve(dir);
  const vms: LabVm[] = [];
  for (let index = 1; existsSync(join(absolute, `lab-${index}`)); index++) vms.push(labVm(absolute, index));
  return vms;
}

function relayConfig(vms: readonly LabVm[]): string {
  const lines = [
    '# Written by `lifeline-relay lab up`; run it with: lifeline-relay serve --config <this file>',
    'dataDir: ./data',
    'api: { listen: 127.0.0.1:8440 }',
    'ssh: { port: 2222 }',
    'vnc: { port: 6080 }',
    'endpoints:',
    '  default: { ipAddress: 127.0.0.1 }',
    '  addressPool: [127.0.0.0/8]',
    'consoles: { defaultTtl: 24h, maxTtl: 30d }',
    'virtualMachines:',
    ...vms.map((vm) => `  - { name: ${vm.name}, serial: { path: ./${vm.name}/serial.sock, protocol: telnet }, vnc: ./${vm.name}/vnc.sock, qmp: ./${vm.name}/qmp.sock }`),
  ];
  return `${lines.join('\n')}\n`;
}

/** Boots `count` lab VMs in `dir` (starting only those not already running) and writes `dir/relay.yaml`. */
export async function labUp(options: LabUpOptions): Promise<{ configPath: string; vms: LabVm[] }> {
  const progress = options.progress ?? (() => undefined);
  const qemu = findQemu();
  const image = ensureLabImage(options.cacheDir ?? defaultCacheDir(), progress);
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const vms = Array.from({ length: options.count }, (_, i) => labVm(dir, i + 1));
  for (const vm of vms) {
    if (Buffer.byteLength(vm.serial) > 107) throw new LabError(`--dir ${dir} is too long for unix socket paths (at most about 90 characters)`);
    mkdirSync(vm.dir, { recursive: true });
    if (runningPid(vm.pidFile)) {
      progress(`lab: ${vm.name} is already running`);
      continue;
    }
    for (const file of [vm.serial, vm.vnc, vm.qmp, vm.pidFile]) rmSync(file, { force: true });
    progress(`lab: starting ${vm.name}`);
    const result = spawnSync(
      qemu,
      [
        '-name', vm.name,
        '-machine', 'pc', '-accel', 'tcg', '-m', '128',
        '-nodefaults', '-no-user-config',
        '-kernel', image.kernel, '-initrd', image.initramfs,
        '-append', `console=tty0 console=ttyS0 quiet lifeline.host=${vm.name}`,
        // Telnet mode, so that a serial break (SSH ~B) reaches the guest (SysRq). QEMU logs what the
        // guest writes to serial.log: the ground truth of what the VM said (and echoed), for tests and people.
        '-chardev', `socket,id=serial0,path=${vm.serial},server=on,wait=off,telnet=on,logfile=${join(vm.dir, 'serial.log')}`,
        '-serial', 'chardev:serial0',
        '-vga', 'std',
        '-vnc', `unix:${vm.vnc}`,
        '-qmp', `unix:${vm.qmp},server=on,wait=off`,
        '-pidfile', vm.pidFile,
        '-daemonize',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (result.status !== 0) {
      throw new LabError(`QEMU failed to start ${vm.name}: ${(result.stderr || result.error?.message || '').trim()}`);
    }
  }
  const configPath = join(dir, 'relay.yaml');
  writeFileSync(configPath, relayConfig(vms));
  return { configPath, vms };
}

/** Stops the lab VMs in `dir` (SIGTERM, then SIGKILL after 5 s) and removes their sockets. */
export async function labDown(options: { dir: string; progress?: (line: string) => void }): Promise<void> {
  const progress = options.progress ?? (() => undefined);
  for (const vm of labVms(options.dir)) {
    const pid = runningPid(vm.pidFile);
    if (pid) {
      progress(`lab: stopping ${vm.name}`);
      await terminate({ pid, stillOurs: () => runningPid(vm.pidFile) === pid }, 5000);
    }
    for (const file of [vm.serial, vm.vnc, vm.qmp, vm.pidFile]) rmSync(file, { force: true });
  }
}
