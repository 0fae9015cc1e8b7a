import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitUntil } from './wait.js';

export const LIBVIRT_URI = 'qemu:///system';
const QEMU_CONF = '/etc/libvirt/qemu.conf';
/** What lets libvirtd run QEMU as root without systemd, cgroups or a security driver (a test machine, not a host to copy). */
const SETTINGS = ['user = "root"', 'group = "root"', 'dynamic_ownership = 0', 'security_driver = "none"'];

function running(pidFile: string, name: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(name) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function virsh(...args: string[]): string {
  return execFileSync('virsh', ['-c', LIBVIRT_URI, ...args], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
}

/**
 * A real libvirtd for the test (Debian's libvirt-daemon, run as root without systemd): the
 * settings above in qemu.conf, virtlogd and libvirtd started in the background. Whatever this
 * started (daemons by their pid files) or changed (qemu.conf, restored) is undone by `stop`.
 */
export async function startLibvirt(): Promise<{ stop: () => Promise<void> }> {
  if (process.getuid?.() !== 0) throw new Error('the libvirt tests run libvirtd as root');
  if (spawnSync('getent', ['passwd', 'libvirt-qemu']).status !== 0) execFileSync('useradd', ['-r', '-U', 'libvirt-qemu']);
  const original = existsSync(QEMU_CONF) ? readFileSync(QEMU_CONF, 'utf8') : undefined;
  const missing = SETTINGS.filter((line) => !(original ?? '').split('\n').includes(line));
  for (const dir of ['/var/log/libvirt', '/var/lib/libvirt/qemu', '/run/libvirt']) mkdirSync(dir, { recursive: true });
  const started: number[] = [];
  const alreadyRunning = running('/run/libvirtd.pid', 'libvirtd') !== undefined;
  if (missing.length > 0) {
    if (alreadyRunning) throw new Error(`a libvirtd is already running without ${missing.join(', ')} in ${QEMU_CONF}`);
    writeFileSync(QEMU_CONF, `${original ?? ''}\n# added by Lifeline's tests\n${missing.join('\n')}\n`);
  }
  if (!running('/run/virtlogd.pid', 'virtlogd')) {
    execFileSync('virtlogd', ['-d']);
    started.push(await waitUntil(() => running('/run/virtlogd.pid', 'virtlogd'), 10_000, 'virtlogd'));
  }
  if (!alreadyRunning) {
    execFileSync('libvirtd', ['-d']);
    started.push(await waitUntil(() => running('/run/libvirtd.pid', 'libvirtd'), 10_000, 'libvirtd'));
  }
  await waitUntil(() => spawnSync('virsh', ['-c', LIBVIRT_URI, 'list'], { stdio: 'ignore' }).status === 0, 20_000, 'libvirtd to answer');
  return {
    stop: async () => {
      for (const pid of started.reverse()) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          continue;
        }
        for (let waited = 0; waited < 5000; waited += 100) {
          if (!existsSync(`/proc/${pid}`)) break;
          await sleep(100);
        }
      }
      if (missing.length > 0) {
        if (original === undefined) rmSync(QEMU_CONF, { force: true });
        else writeFileSync(QEMU_CONF, original);
      }
    },
  };
}

/** A QEMU TCG domain booting the lab kernel and initramfs, with the given serial device XML and VNC on a TCP port. */
export function domainXml(name: string, image: { kernel: string; initramfs: string }, serial: string): string {
  return `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>${image.kernel}</kernel><initrd>${image.initramfs}</initrd><cmdline>console=tty0 console=ttyS0 quiet lifeline.host=${name}</cmdline></os>
  <on_reboot>restart</on_reboot>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    ${serial}
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
    <video><model type='vga'/></video>
  </devices>
</domain>`;
}
