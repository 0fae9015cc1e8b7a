import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { VM_NAME, type SerialProtocol, type SocketAddress } from '../config/config.js';
import type { PowerAction, PowerBackend } from '../backends/virtual-machines.js';
import type { PowerState } from '../backends/qmp-monitor.js';
import type { Logger } from '../logger.js';
import { DiscoveryError, type DiscoveredVm, type DiscoverySource } from './discovery.js';

/** `virsh domstate` → the API's power state. */
function powerState(state: string): PowerState {
  if (state === 'running' || state === 'in shutdown') return 'Running';
  if (state === 'paused' || state === 'pmsuspended' || state === 'blocked') return 'Paused';
  if (state === 'shut off' || state === 'crashed') return 'Stopped';
  return 'Unavailable';
}

/** shutdown asks the guest (ACPI), powerOff stops it at once (destroy: the domain stays defined). */
const VIRSH_COMMAND: Record<PowerAction, string> = { reset: 'reset', shutdown: 'shutdown', powerOff: 'destroy', powerOn: 'start', nmi: 'inject-nmi' };

function unescapeXml(text: string): string {
  return text.replace(/&(apos|quot|lt|gt|amp);/g, (_, entity: string) => ({ apos: "'", quot: '"', lt: '<', gt: '>', amp: '&' })[entity]!);
}

/** The attributes of one start tag (`<serial type='pty'>`): libvirt writes them quoted, single or double. */
function attributes(tag: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const match of tag.matchAll(/([A-Za-z_:][\w:.-]*)\s*=\s*(?:'([^']*)'|"([^"]*)")/g)) found[match[1]!] = unescapeXml(match[2] ?? match[3] ?? '');
  return found;
}

/**
 * The console channels in a live domain XML: the first `<serial>` (pty, unix or tcp, with
 * `<protocol type='telnet'/>`) and the VNC `<graphics>` (TCP port or unix socket). Channels the
 * relay cannot open (a serial that connects out, VNC not yet given a port) are left out.
 */
export function consoleChannels(xml: string): { serial?: SocketAddress; serialProtocol: SerialProtocol; vnc?: SocketAddress } {
  const result: { serial?: SocketAddress; serialProtocol: SerialProtocol; vnc?: SocketAddress } = { serialProtocol: 'raw' };
  const serial = /<serial\b([^>]*)>([\s\S]*?)<\/serial>/.exec(xml);
  if (serial) {
    const type = attributes(serial[1]!).type;
    const source = attributes(/<source\b([^>]*?)\/?>/.exec(serial[2]!)?.[1] ?? '');
    if (/<protocol\b[^>]*type\s*=\s*['"]telnet['"]/.test(serial[2]!)) result.serialProtocol = 'telnet';
    if (type === 'pty' && source.path) result.serial = { kind: 'pty', path: source.path };
    else if (type === 'unix' && source.path && source.mode !== 'connect') result.serial = { kind: 'unix', path: source.path };
    else if (type === 'tcp' && source.service && source.mode !== 'connect') {
      const host = !source.host || source.host === '0.0.0.0' || source.host === '::' ? '127.0.0.1' : source.host;
      result.serial = { kind: 'tcp', host, port: Number(source.service) };
    }
  }
  for (const graphics of xml.matchAll(/<graphics\b([^>]*)>/g)) {
    const attrs = attributes(graphics[1]!);
    if (attrs.type !== 'vnc') continue;
    if (attrs.socket) result.vnc = { kind: 'unix', path: attrs.socket };
    else if (attrs.port && Number(attrs.port) > 0) {
      const host = !attrs.listen || attrs.listen === '0.0.0.0' || attrs.listen === '::' ? '127.0.0.1' : attrs.listen;
      result.vnc = { kind: 'tcp', host, port: Number(attrs.port) };
    }
    break;
  }
  return result;
}

/**
 * libvirt, through `virsh` (package libvirt-clients): the domains, their state and their consoles
 * from the live XML; lifecycle events from `virsh event --loop --all`, with the periodic scan as
 * the fallback. Power actions are virsh's reset, destroy, start and inject-nmi.
 */
export class LibvirtSource implements DiscoverySource {
  readonly kind = 'libvirt' as const;
  readonly description: string;
  private readonly skipped = new Set<string>();

  constructor(
    private readonly uri: string,
    private readonly log: Logger,
  ) {
    this.description = `libvirt ${uri}`;
  }

  private virsh(args: string[], timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile('virsh', ['-c', this.uri, ...args], { timeout: timeoutMs, env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 4 << 20 }, (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new DiscoveryError('virsh is not installed; install it with: sudo apt-get install libvirt-clients'));
        // virsh's whole reason (it often spans lines: "error: failed to …" then "error: …the cause"), bounded.
        const reason = (stderr || error.message).trim().split('\n').map((line) => line.trim()).filter(Boolean).join(' | ').slice(0, 2000);
        reject(new DiscoveryError(`virsh ${args[0]} failed: ${reason}`));
      });
    });
  }

  private power(name: string, actions: PowerAction[]): PowerBackend {
    return {
      actions,
      run: async (action) => {
        await this.virsh([VIRSH_COMMAND[action], name], 30_000);
      },
    };
  }

  async scan(): Promise<DiscoveredVm[]> {
    const lines = (output: string): string[] => output.split('\n').map((line) => line.trim()).filter(Boolean);
    const names = lines(await this.virsh(['list', '--all', '--name']));
    const persistent = new Set(lines(await this.virsh(['list', '--all', '--persistent', '--name'])));
    const vms: DiscoveredVm[] = [];
    for (const name of names) {
      if (!VM_NAME.test(name)) {
        if (!this.skipped.has(name)) this.log.warn({ domain: name }, 'libvirt domain skipped: its name is not a valid VM name (1-63 letters, digits, ".", "_", "-")');
        this.skipped.add(name);
        continue;
      }
      let state: PowerState;
      let xml = '';
      try {
        state = powerState((await this.virsh(['domstate', name])).trim());
        if (state !== 'Stopped') xml = await this.virsh(['dumpxml', name]);
        // It stopped between the two calls: dumpxml then gives the inactive definition (no `id`, no live
        // ports), which must read as stopped, not as a VM whose console channels changed.
        if (state !== 'Stopped' && !/^\s*<domain\b[^>]*\bid=['"]\d+['"]/.test(xml)) state = 'Stopped';
      } catch {
        continue; // gone between the list and now: the next scan knows
      }
      const channels = state === 'Stopped' ? { serialProtocol: 'raw' as const } : consoleChannels(xml);
      const actions: PowerAction[] = state === 'Stopped' ? (persistent.has(name) ? ['powerOn'] : []) : state === 'Running' ? ['reset', 'shutdown', 'powerOff', 'nmi'] : state === 'Paused' ? ['reset', 'powerOff'] : [];
      vms.push({ config: { name, ...channels }, state, power: this.power(name, actions) });
    }
    return vms;
  }

  watch(changed: () => void): () => void {
    let child: ChildProcess | undefined;
    let stopped = false;
    let retry: NodeJS.Timeout | undefined;
    const run = (): void => {
      child = spawn('virsh', ['-c', this.uri, 'event', '--loop', '--all'], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, LC_ALL: 'C' } });
      child.on('error', () => undefined);
      child.stdout!.on('data', () => changed());
      child.once('exit', () => {
        if (!stopped) retry = setTimeout(run, 5000);
      });
    };
    run();
    return () => {
      stopped = true;
      clearTimeout(retry);
      child?.kill();
    };
  }
}
