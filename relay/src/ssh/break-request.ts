import type { EventEmitter } from 'node:events';
import type { Connection } from 'ssh2';

/** What ssh2 keeps inside a server connection that this needs; ssh2 1.x, pinned by the lockfile. */
interface Ssh2Internals {
  _protocol?: { _handlers?: Record<string, (...args: unknown[]) => unknown>; channelSuccess(id: number): void; channelFailure(id: number): void };
  _chanMgr?: { get(id: number): unknown };
}

/** A session's `break` request (RFC 4335): answer with whether a break was sent. */
export type BreakListener = (lengthMs: number, reply: (sent: boolean) => void) => void;

/**
 * ssh2's server answers every `break` channel request with failure by itself. This routes them
 * to the session they are for, as a `break` event (`BreakListener`), instead. Returns false
 * when this ssh2 has a different inside, in which case break stays refused.
 */
export function routeBreakRequests(client: Connection): boolean {
  const internals = client as unknown as Ssh2Internals;
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
