import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Client, ClientChannel, Connection } from 'ssh2';

/*
 * Every use of ssh2's insides, in one place: ssh2 1.x (pinned by the lockfile) has no public API
 * for these. ssh2-internals.test.ts checks each against the installed ssh2 and names the version
 * it was written for, so an ssh2 upgrade fails there first, not in a user's session.
 */

/** The ssh2 version these were written and tested for. */
export const SSH2_VERSION = '1.17.0';

/** What a server-side connection keeps inside that the relay reaches. */
interface ServerConnectionInternals {
  _sock?: Socket;
  _protocol?: { _handlers?: Record<string, (...args: unknown[]) => unknown>; channelSuccess(id: number): void; channelFailure(id: number): void };
  _chanMgr?: { get(id: number): unknown };
}

/** The TCP socket (or TLS socket) under a server-side connection; undefined if this ssh2 keeps it elsewhere. */
export function socketOf(connection: Connection): Socket | undefined {
  return (connection as unknown as ServerConnectionInternals)._sock;
}

/** A session's `break` request (RFC 4335): answer with whether a break was sent. */
export type BreakListener = (lengthMs: number, reply: (sent: boolean) => void) => void;

/**
 * ssh2's server answers every `break` channel request with failure by itself. This routes them
 * to the session they are for, as a `break` event (`BreakListener`), instead. Returns false
 * when this ssh2 has a different inside, in which case break stays refused.
 */
export function routeBreakRequests(client: Connection): boolean {
  const internals = client as unknown as ServerConnectionInternals;
  const handlers = internals._protocol?._handlers;
  const original = handlers?.CHANNEL_REQUEST;
  const channels = internals._chanMgr;
  if (!handlers || typeof original !== 'function' || !channels) return false;
  handlers.CHANNEL_REQUEST = (packet: unknown, recipient: unknown, type: unknown, wantReply: unknown, data: unknown) => {
    if (type !== 'break') return original(packet, recipient, type, wantReply, data);
    const session = channels.get(recipient as number) as (EventEmitter & { _chanInfo?: { outgoing: { id: number } } }) | undefined;
    const outgoing = session?._chanInfo?.outgoing.id;
    const reply = (sent: boolean): void => {
      if (!wantReply || outgoing === undefined) return;
      if (sent) internals._protocol!.channelSuccess(outgoing);
      else internals._protocol!.channelFailure(outgoing);
    };
    const lengthMs = Buffer.isBuffer(data) && data.length >= 4 ? data.readUInt32BE(0) : 0;
    if (!session || session.listenerCount('break') === 0) return reply(false);
    session.emit('break', lengthMs, reply);
    return undefined;
  };
  return true;
}

/** ssh2's packet sender: the client has no API for RFC 4335 `break`. */
const { sendPacket, writeUInt32BE } = createRequire(import.meta.url)('ssh2/lib/protocol/utils.js') as {
  sendPacket: (protocol: unknown, packet: Buffer) => void;
  writeUInt32BE: (buffer: Buffer, value: number, offset: number) => void;
};

const CHANNEL_REQUEST = 98;
const USERAUTH_BANNER = 53;

interface ClientInternals {
  _protocol?: { _packetRW: { write: { allocStart: number; alloc(size: number): Buffer; finalize(packet: Buffer): Buffer } } };
}

/**
 * Sends the SSH `break` request (RFC 4335, what OpenSSH's ~B sends) on a session channel and
 * resolves with the server's answer: true when the break was sent to the VM.
 */
export function sendSshBreak(client: Client, channel: ClientChannel, lengthMs = 500): Promise<boolean> {
  const protocol = (client as unknown as ClientInternals)._protocol;
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

/**
 * Sends an SSH_MSG_USERAUTH_BANNER now (RFC 4252 §5.4: any time before authentication succeeds):
 * OpenSSH prints it, so a refusal can say why ("Permission denied" alone cannot). ssh2 sends only
 * one banner, fixed per server, at the start. False when this ssh2 keeps its writer elsewhere.
 */
export function sendAuthBanner(connection: Connection, text: string): boolean {
  const protocol = (connection as unknown as ClientInternals)._protocol;
  if (!protocol?._packetRW?.write) return false;
  const message = text.endsWith('\r\n') ? text : `${text}\r\n`;
  const length = Buffer.byteLength(message);
  const write = protocol._packetRW.write;
  // byte USERAUTH_BANNER, string message, string language tag (empty)
  const start = write.allocStart;
  const packet = write.alloc(1 + 4 + length + 4);
  packet[start] = USERAUTH_BANNER;
  writeUInt32BE(packet, length, start + 1);
  packet.write(message, start + 5, length, 'utf8');
  writeUInt32BE(packet, 0, start + 5 + length);
  sendPacket(protocol, write.finalize(packet));
  return true;
}

/** SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1). */
export const OPEN_FAILURE = { administrativelyProhibited: 1, connectFailed: 2, unknownChannelType: 3, resourceShortage: 4 } as const;

interface ProtocolWithOpenFail {
  channelOpenFail(remote: number, reason: number, description: string): void;
}

/**
 * A channel refusal with a reason the client prints. ssh2's `reject()` sends an empty
 * description, so OpenSSH showed `open failed: connect failed: ` and nothing more. The
 * connection's protocol object sends every open failure; wrapping its `channelOpenFail` lets the
 * next `reject()` carry a code and a description (the wrapper is per connection and synchronous:
 * `reject()` calls it at once). Returns `refuse(reject, code, why)`.
 */
export function channelRefusals(client: Connection): (reject: () => void, code: number, description: string) => void {
  const protocol = (client as unknown as { _protocol?: ProtocolWithOpenFail })._protocol;
  let next: { code: number; description: string } | undefined;
  if (protocol) {
    const send = protocol.channelOpenFail.bind(protocol);
    protocol.channelOpenFail = (remote, reason, description) => {
      const given = next;
      next = undefined;
      send(remote, given?.code ?? reason, given?.description ?? description);
    };
  }
  return (reject, code, description) => {
    next = { code, description };
    reject();
    next = undefined;
  };
}
