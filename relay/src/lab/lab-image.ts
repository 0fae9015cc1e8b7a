import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import findOnPath from 'which';
import { processAlive } from '../core/process-alive.js';
import { buildCpio, type CpioEntry } from './cpio.js';

/** A missing prerequisite or failed lab step, with what to run to fix it. */
export class LabError extends Error {
  override name = 'LabError';
}

export interface LabImage {
  kernel: string;
  initramfs: string;
}

const INITTAB = `::sysinit:/bin/busybox mount -t proc proc /proc
::sysinit:/bin/busybox mount -t sysfs sysfs /sys
::sysinit:/bin/busybox mount -t devtmpfs devtmpfs /dev
::sysinit:/bin/busybox --install -s
::sysinit:/bin/sh -c 'hostname "$(sed -n "s/.*lifeline.host=\\([^ ]*\\).*/\\1/p" /proc/cmdline)"'
ttyS0::respawn:-/bin/sh
tty1::respawn:-/bin/sh
::ctrlaltdel:/bin/reboot
::shutdown:/bin/umount -a -r
`;

const PROFILE = `export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PS1='\\h:\\w# '
`;

/** Bumped when the initramfs layout changes, so cached images are rebuilt. */
const IMAGE_LAYOUT = 1;

export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'lifeline', 'lab');
}

/** A command's path on PATH (no shell: the name is never interpreted). */
function which(command: string): string | undefined {
  return findOnPath.sync(command, { nothrow: true }) ?? undefined;
}

/** A static ELF has no PT_INTERP program header; a dynamic busybox cannot run alone in an initramfs. */
function isStaticElf(file: string): boolean {
  const elf = readFileSync(file);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === 3) return false;
  }
  return true;
}

export function findStaticBusybox(): string {
  for (const candidate of ['/bin/busybox', '/usr/bin/busybox', which('busybox')]) {
    if (candidate && existsSync(candidate) && isStaticElf(candidate)) return candidate;
  }
  throw new LabError('a statically linked busybox is needed for the lab VM image; install it with: sudo apt-get install busybox-static');
}

export function findQemu(): string {
  const qemu = which('qemu-system-x86_64');
  if (!qemu) throw new LabError('QEMU is needed to run lab VMs; install it with: sudo apt-get install qemu-system-x86');
  return qemu;
}

function readableKernelInBoot(): string | undefined {
  let names: string[];
  try {
    names = readdirSync('/boot').filter((name) => name.startsWith('vmlinuz-')).sort();
  } catch {
    return undefined;
  }
  for (const name of names.reverse()) {
    const path = join('/boot', name);
    try {
      readFileSync(path, { flag: 'r' }).subarray(0, 1);
      return path;
    } catch {
      // Ubuntu keeps /boot/vmlinuz-* readable by root only; fall back to the package.
    }
  }
  return undefined;
}

/** Extracts a Debian kernel from the `linux-image-*` package that `linux-image-amd64` depends on. */
function downloadKernel(target: string, progress: (line: string) => void): void {
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb', 'tar']) {
    if (!which(tool)) throw new LabError(`no kernel in /boot and no ${tool} to fetch one; the lab VM needs a Debian or Ubuntu host (or a readable /boot/vmlinuz-*)`);
  }
  const depends = execFileSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
  const pkg = /Depends:\s*(linux-image-[0-9][^\s]*)/.exec(depends)?.[1];
  if (!pkg) throw new LabError('cannot tell which kernel package linux-image-amd64 depends on; run: sudo apt-get update');
  // The work folder sits in the cache, named by pid: a run killed mid-download (its finally never
  // runs) leaves it there, and the next download removes it once that pid is gone.
  const cacheDir = dirname(target);
  for (const name of readdirSync(cacheDir)) {
    const owner = /^\.download-(\d+)-/.exec(name)?.[1];
    if (owner && !processAlive(Number(owner))) rmSync(join(cacheDir, name), { recursive: true, force: true });
  }
  const work = mkdtempSync(join(cacheDir, `.download-${process.pid}-`));
  try {
    progress(`lab: downloading the kernel package ${pkg} (once; cached afterwards)`);
    const download = spawnSync('apt-get', ['download', pkg], { cwd: work, encoding: 'utf8' });
    const deb = readdirSync(work).find((name) => name.endsWith('.deb'));
    if (!deb) throw new LabError(`apt-get download ${pkg} failed: ${(download.stderr || download.stdout).trim().split('\n').pop() ?? ''}; try: sudo apt-get update`);
    progress('lab: extracting the kernel');
    // A constant script: the paths reach it as positional arguments, never interpolated into it.
    execFileSync('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards './boot/vmlinuz-*'`, 'sh', join(work, deb), work]);
    const kernel = readdirSync(join(work, 'boot')).find((name) => name.startsWith('vmlinuz-'));
    if (!kernel) throw new LabError(`${pkg} holds no ./boot/vmlinuz-*`);
    copyFileSync(join(work, 'boot', kernel), target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function initramfsEntries(busybox: Buffer): CpioEntry[] {
  return [
    ...['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'usr', 'usr/bin', 'usr/sbin', 'run'].map((path): CpioEntry => ({ kind: 'dir', path })),
    { kind: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { kind: 'symlink', path: 'init', target: '/bin/busybox' },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'char', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { kind: 'file', path: 'etc/inittab', data: Buffer.from(INITTAB) },
    { kind: 'file', path: 'etc/profile', data: Buffer.from(PROFILE) },
    { kind: 'file', path: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n') },
    { kind: 'file', path: 'etc/group', data: Buffer.from('root:x:0:\n') },
  ];
}

/** Builds the lab image once (kernel + busybox initramfs) and returns the cached files. */
export function ensureLabImage(cacheDir: string, progress: (line: string) => void): LabImage {
  const busyboxPath = findStaticBusybox();
  const busybox = readFileSync(busyboxPath);
  mkdirSync(cacheDir, { recursive: true });
  const kernel = join(cacheDir, 'vmlinuz');
  if (!existsSync(kernel) || statSync(kernel).size === 0) {
    const fromBoot = readableKernelInBoot();
    const partial = `${kernel}.partial`;
    if (fromBoot) {
      progress(`lab: using the kernel ${fromBoot}`);
      copyFileSync(fromBoot, partial);
    } else {
      downloadKernel(partial, progress);
    }
    renameSync(partial, kernel);
  }
  const digest = createHash('sha256').update(busybox).update(INITTAB).update(PROFILE).update(String(IMAGE_LAYOUT)).digest('hex').slice(0, 16);
  const initramfs = join(cacheDir, `initramfs-${digest}.cpio`);
  if (!existsSync(initramfs)) {
    progress('lab: building the busybox initramfs');
    writeFileSync(`${initramfs}.partial`, buildCpio(initramfsEntries(busybox)));
    renameSync(`${initramfs}.partial`, initramfs);
  }
  return { kernel, initramfs };
}
