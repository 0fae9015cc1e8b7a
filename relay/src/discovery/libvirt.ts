import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { XMLParser } from 'fast-xml-parser';
import { VM_NAME, type SerialProtocol, type SocketAddress } from '../config/config.js';
import type { PowerAction, PowerBackend } from '../backends/virtual-machines.js';
import type { PowerState } from '../backends/qmp-monitor.js';
import type { Logger } from '../logger.js';
import { DiscoveryError, type DiscoveredVm, type DiscoverySource } from './source.js';

/** `virsh domstate` → the API's power state. */
function powerState(state: string): PowerState {
  if (state === 'running' || state === 'in shutdown') return 'Running';
  if (state === 'paused' || state === 'pmsuspended' || state === 'blocked') return 'Paused';
  if (state === 'shut off' || state === 'crashed') return 'Stopped';
  return 'Unavailable';
}

/** shutdown asks the guest (ACPI), powerOff stops it at once (destroy: the domain stays defined). */
const VIRSH_COMMAND: Record<PowerAction, string> = { reset: 'reset', shutdown: 'shutdown', powerOff: 'destroy', powerOn: 'start', nmi: 'inject-nmi' };

/** An element as fast-xml-parser gives it: attributes under their own names, children by tag. */
type XmlElement = { [name: string]: string | XmlElement | XmlElement[] | undefined };

const DOMAIN_XML = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  // Numeric character references (&#39;) as well as the five named entities libvirt writes.
  htmlEntities: true,
  isArray: (name) => ['serial', 'graphics', 'source', 'protocol'].includes(name),
});

/** The live domain's `id` (absent for an inactive definition) and its `<devices>` element. */
export function readDomain(xml: string): { id?: string; devices: XmlElement } {
  let document: XmlElement;
  try {
    document = DOMAIN_XML.parse(xml, true) as XmlElement;
  } catch (error) {
    throw new DiscoveryError(`libvirt domain XML could not be read: ${(error as Error).message}`);
  }
  const domain = (document.domain ?? {}) as XmlElement;
  const devices = typeof domain.devices === 'object' && !Array.isArray(domain.devices) ? domain.devices : {};
  return { ...(typeof domain.id === 'string' && { id: domain.id }), devices };
}

const attribute = (element: XmlElement | undefined, name: string): string | undefined => (typeof element?.[name] === 'string' ? (element[name] as string) : undefined);
const children = (element: XmlElement | undefined, name: string): XmlElement[] => {
  const value = element?.[name];
  return Array.isArray(value) ? value : [];
};
const anyHost = (host: string | undefined): string => (!host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);

/**
 * The console channels of a live domain, from its `<devices>` only (a `<serial>` inside
 * `<metadata>` or anywhere else is not a device): the first `<serial>` (pty, unix or tcp, with
 * `<protocol type='telnet'/>`) and the first VNC `<graphics>` (TCP port or unix socket). Channels
 * the relay cannot open (a serial that connects out, VNC not yet given a port) are left out.
 */
export function consoleChannels(xml: string): { serial?: SocketAddress; serialProtocol: SerialProtocol; vnc?: SocketAddress } {
  const { devices } = readDomain(xml);
  const result: { serial?: SocketAddress; serialProtocol: SerialProtocol; vnc?: SocketAddress } = { serialProtocol: 'raw' };
  const serial = children(devices, 'serial')[0];
  if (serial) {
    const type = attribute(serial, 'type');
    const source = children(serial, 'source')[0];
    const path = attribute(source, 'path');
    const mode = attribute(source, 'mode');
    const service = attribute(source, 'service');
    if (children(serial, 'protocol').some((protocol) => attribute(protocol, 'type') === 'telnet')) result.serialProtocol = 'telnet';
    if (type === 'pty' && path) result.serial = { kind: 'pty', path };
    else if (type === 'unix' && path && mode !== 'connect') result.serial = { kind: 'unix', path };
    else if (type === 'tcp' && service && mode !== 'connect') result.serial = { kind: 'tcp', host: anyHost(attribute(source, 'host')), port: Number(service) };
  }
  const graphics = children(devices, 'graphics').find((element) => attribute(element, 'type') === 'vnc');
  const socket = attribute(graphics, 'socket');
  const port = Number(attribute(graphics, 'port'));
  if (socket) result.vnc = { kind: 'unix', path: socket };
  else if (port > 0) result.vnc = { kind: 'tcp', host: anyHost(attribute(graphics, 'listen')), port };
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
      } catch {
        continue; // gone between the list and now: the next scan knows
      }
      let channels: ReturnType<typeof consoleChannels> = { serialProtocol: 'raw' };
      if (state !== 'Stopped') {
        try {
          // It stopped between the two calls: dumpxml then gives the inactive definition (no `id`, no live
          // ports), which must read as stopped, not as a VM whose console channels changed.
          if (readDomain(xml).id === undefined) state = 'Stopped';
          else channels = consoleChannels(xml);
        } catch (error) {
          this.log.warn({ domain: name, err: (error as Error).message }, 'libvirt domain skipped: its XML could not be read');
          continue;
        }
      }
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
