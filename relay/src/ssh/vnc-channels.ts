import { randomUUID } from 'node:crypto';
import type ssh2 from 'ssh2';
import { sharingOf } from '../core/console-rules.js';
import type { Store } from '../store/store.js';
import { noticeQueue, streamClient, VncSession } from '../vnc/vnc-session.js';
import type { SerialChannelContext } from './serial-channels.js';
import { OPEN_FAILURE } from './ssh2-internals.js';

/** What a connection's VNC forwards need to know of it: what its serial channels do, and more. */
export interface VncChannelContext extends SerialChannelContext {
  store: Store;
  clientGone(): boolean;
  counted(channel: { once(event: 'close', listener: () => void): unknown }): void;
  refuse(reject: () => void, what: string, why: string, code?: number): void;
  onObserverDropped?: ((message: string) => void) | undefined;
}

/** Why `vm`'s screen cannot be watched now, or undefined (checked against the store when the forward opens). */
async function observeRefusal(context: VncChannelContext): Promise<string | undefined> {
  const { vm } = context;
  const record = await context.store.getConsole(vm.name);
  if (!record) return `the console for ${vm.name} was deleted`;
  return context.supervisor.sharing.observerRefusal(vm.name, sharingOf(record), 'vnc');
}

/**
 * `direct-tcpip` to `vnc:5900` (the VM's one VNC session: it displaces the one before) or
 * `vnc-observe:5900` (a read-only view beside it: the relay drops the viewer's input). A forwarded
 * channel has no room for a reason: a refusal is the channel-open failure's text.
 */
export function openVncChannel(context: VncChannelContext, accept: () => ssh2.ServerChannel, reject: () => void, observe: boolean): void {
  const { vm, grant, endpoint, remoteAddress, supervisor } = context;
  const what = `direct-tcpip ${observe ? 'vnc-observe' : 'vnc'}:5900`;
  const sessionId = randomUUID();
  const open = async (): Promise<void> => {
    const why = observe ? await observeRefusal(context) : undefined;
    if (why) return context.refuse(reject, what, why);
    let vnc;
    // A remote console's lines for the session ("recorded") may come before the session exists.
    const notices = noticeQueue();
    try {
      vnc = await vm.openVnc({ grant, remoteAddress, path: 'ssh', session: sessionId, endpoint, ...(observe && { observe: true }), notify: notices.notify });
    } catch (error) {
      return context.refuse(reject, what, `the VM's screen cannot be opened now (${(error as Error).message.slice(0, 120)}); is the VM running?`, OPEN_FAILURE.connectFailed);
    }
    // Revoked or gone while the VM's screen was opening: never admitted.
    if (!context.isOpen()) {
      vnc.socket.destroy();
      if (!context.clientGone()) reject();
      return;
    }
    const channel = accept();
    context.counted(channel);
    const closeChannel = async (): Promise<void> => {
      try {
        channel.close();
      } catch {
        // Gone with its connection.
      }
    };
    const vmLog = context.log.child({ vm: vm.name });
    const observer = observe ? { dropped: (message: string) => context.onObserverDropped?.(message) } : undefined;
    const session = new VncSession(vm.name, 'ssh', endpoint, remoteAddress, streamClient(channel, closeChannel, vmLog), vnc, vmLog, (ended) => {
      context.sessions.delete(ended);
      supervisor.release(ended);
    }, sessionId, observer);
    context.sessions.add(session);
    notices.deliver((line) => session.notify(line));
    if (observer) supervisor.join(session, grant);
    else supervisor.claim(session, grant, vm);
    session.start();
  };
  open().catch((error: unknown) => {
    context.log.error({ err: (error as Error).message }, 'opening a VNC forward failed');
    if (!context.clientGone()) reject();
  });
}
