import { createRequire } from 'node:module';
import type { Client, ClientChannel } from 'ssh2';

/** ssh2's packet sender; ssh2 1.x (pinned by the lockfile) has no client API for RFC 4335 `break`. */
const { sendPacket, writeUInt32BE } = createRequire(import.meta.url)('ssh2/lib/protocol/utils.js') as {
  sendPacket: (protocol: unknown, packet: Buffer) => void;
  writeUInt32BE: (buffer: Buffer, value: number, offset: number) => void;
};

const CHANNEL_REQUEST = 98;

interface Internals {
  _protocol?: { _packetRW: { write: { allocStart: number; alloc(size: number): Buffer; finalize(packet: Buffer): Buffer } } };
}

/**
 * Sends the SSH `break` request (RFC 4335, what OpenSSH's ~B sends) on a session channel and
 * resolves with the server's answer: true when the break was sent to the VM.
 */
export function sendSshBreak(client: Client, channel: ClientChannel, lengthMs = 500): Promise<boolean> {
  const protocol = (client as unknown as Internals)._protocol;
  const remote = (channel as unknown as { outgoing?: { id?: number } }).outgoing?.id;
  const callbacks = (channel as unknown as { _callbacks?: Array<(failed: boolean) => void> })._callbacks;
  if (!protocol || remote === undefined || !callbacks) return Promise.resolve(false);
  return new Promise((resolve) => {
    callbacks.push((failed) => resolve(!failed));
    const write = protocol._packetRW.write;
    // byte CHANNEL_REQUEST, uint32 recipient, string "break", boolean want-reply, uint32 break-length (ms)
    const start = write.allocStart;
    const packet = write.alloc(1 + 4 + 4 + 5 + 1 + 4);
    packet[start] = CHANNEL_REQUEST;
    writeUInt32BE(packet, remote, start + 1);
    writeUInt32BE(packet, 5, start + 5);
    packet.write('break', start + 9, 5, 'latin1');
    packet[start + 14] = 1;
    writeUInt32BE(packet, lengthMs, start + 15);
    sendPacket(protocol, write.finalize(packet));
  });
}
