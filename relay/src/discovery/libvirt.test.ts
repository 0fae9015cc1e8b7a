import assert from 'node:assert/strict';
import { test } from 'node:test';
import { consoleChannels } from './libvirt.js';

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
    consoleChannels(`<serial type="tcp"><source mode="bind" host="127.0.0.1" service="4555"/><protocol type="telnet"/></serial><graphics type='vnc' socket='/run/vnc&apos;s.sock'/>`),
    { serialProtocol: 'telnet', serial: { kind: 'tcp', host: '127.0.0.1', port: 4555 }, vnc: { kind: 'unix', path: "/run/vnc's.sock" } },
  );
  assert.deepEqual(consoleChannels(`<serial type='unix'><source mode='bind' path='/run/s.sock'/></serial>`).serial, { kind: 'unix', path: '/run/s.sock' });
  // A serial that connects out, and VNC before it has a port: nothing to open.
  assert.deepEqual(consoleChannels(`<serial type='tcp'><source mode='connect' host='10.0.0.1' service='4555'/></serial><graphics type='vnc' port='-1' autoport='yes'/>`), { serialProtocol: 'raw' });
  assert.deepEqual(consoleChannels(`<graphics type='spice' port='5930'/>`), { serialProtocol: 'raw' });
});
