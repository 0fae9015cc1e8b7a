import assert from 'node:assert/strict';
import { test } from 'node:test';
import { consoleChannels, readDomain } from './libvirt.js';

/** A live domain around some devices, as `virsh dumpxml` prints it. */
const domain = (devices: string, before = ''): string => `<domain type='kvm' id='7'><name>vm</name>${before}<devices>${devices}</devices></domain>`;

test('libvirt XML: pty serial and VNC on a port', () => {
  const xml = `<domain><devices>
    <serial type='pty'><source path='/dev/pts/7'/><target type='isa-serial' port='0'/></serial>
    <console type='pty' tty='/dev/pts/7'><source path='/dev/pts/7'/></console>
    <graphics type='vnc' port='5903' autoport='yes' listen='0.0.0.0'><listen type='address' address='0.0.0.0'/></graphics>
  </devices></domain>`;
  assert.deepEqual(consoleChannels(xml), { serialProtocol: 'raw', serial: { kind: 'pty', path: '/dev/pts/7' }, vnc: { kind: 'tcp', host: '127.0.0.1', port: 5903 } });
});

test('libvirt XML: telnet TCP serial, unix serial, VNC socket, and channels the relay cannot open', () => {
  assert.deepEqual(
    consoleChannels(domain(`<serial type="tcp"><source mode="bind" host="127.0.0.1" service="4555"/><protocol type="telnet"/></serial><graphics type='vnc' socket='/run/vnc&apos;s.sock'/>`)),
    { serialProtocol: 'telnet', serial: { kind: 'tcp', host: '127.0.0.1', port: 4555 }, vnc: { kind: 'unix', path: "/run/vnc's.sock" } },
  );
  assert.deepEqual(consoleChannels(domain(`<serial type='unix'><source mode='bind' path='/run/s.sock'/></serial>`)).serial, { kind: 'unix', path: '/run/s.sock' });
  // A serial that connects out, and VNC before it has a port: nothing to open.
  assert.deepEqual(consoleChannels(domain(`<serial type='tcp'><source mode='connect' host='10.0.0.1' service='4555'/></serial><graphics type='vnc' port='-1' autoport='yes'/>`)), { serialProtocol: 'raw' });
  assert.deepEqual(consoleChannels(domain(`<graphics type='spice' port='5930'/>`)), { serialProtocol: 'raw' });
});

test('libvirt XML: only <devices> count; a <serial> or <graphics> decoy in <metadata> (which any domain editor may write) is ignored', () => {
  const metadata = `<metadata><app:notes xmlns:app='urn:x'><serial type='unix'><source mode='bind' path='/tmp/evil.sock'/></serial><graphics type='vnc' socket='/tmp/evil-vnc.sock'/></app:notes></metadata>`;
  const xml = domain(`<serial type='pty'><source path='/dev/pts/3'/></serial><graphics type='spice' port='5930'/><graphics type='vnc' port='5905' listen='127.0.0.1'/>`, metadata);
  assert.deepEqual(consoleChannels(xml), { serialProtocol: 'raw', serial: { kind: 'pty', path: '/dev/pts/3' }, vnc: { kind: 'tcp', host: '127.0.0.1', port: 5905 } });
  // With no real devices, the decoys give nothing.
  assert.deepEqual(consoleChannels(domain('', metadata)), { serialProtocol: 'raw' });
});

test('libvirt XML: numeric character references and every predefined entity are decoded; the live id is read; bad XML is a clear error', () => {
  assert.deepEqual(consoleChannels(domain(`<graphics type='vnc' socket='/run/a&#39;b&#x41;&amp;&lt;&gt;&quot;.sock'/>`)).vnc, { kind: 'unix', path: `/run/a'bA&<>".sock` });
  assert.equal(readDomain(domain('')).id, '7');
  assert.equal(readDomain(`<domain type='kvm'><name>vm</name><devices/></domain>`).id, undefined, 'an inactive definition has no id');
  assert.throws(() => consoleChannels('<domain><devices><serial></devices></domain>'), /libvirt domain XML could not be read: .*closing tag/);
});
