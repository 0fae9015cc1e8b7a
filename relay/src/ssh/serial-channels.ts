import type { EventEmitter } from 'node:events';
import type ssh2 from 'ssh2';
import { sharingOf, type SessionGrant } from '../core/console-rules.js';
import type { Logger } from '../logger.js';
import type { VmConsole } from '../sessions/console-seam.js';
import type { LiveSession, SessionRole } from '../sessions/live-session.js';
import type { SessionSupervisor } from '../sessions/session-supervisor.js';
import type { Store } from '../store/store.js';
import { SerialSession } from './serial-session.js';
import type { ControlVerb, SessionRequests } from './session-requests.js';
import type { BreakListener } from './ssh2-internals.js';

/** What a connection's serial channels need to know of it. */
export interface SerialChannelContext {
  vm: VmConsole;
  grant: SessionGrant;
  endpoint: string;
  remoteAddress: string;
  log: Logger;
  supervisor: SessionSupervisor;
  /** The connection's live sessions (closed with it). */
  sessions: Set<LiveSession>;
  /** False once the console stopped admitting the connection (or it closed): no channel starts then. */
  isOpen(): boolean;
}

/** Bridges an accepted channel to the VM's serial console in `role`; OpenSSH's ~B becomes a serial break. */
export function startSerialChannel(context: SerialChannelContext, session: ssh2.Session, channel: ssh2.ServerChannel, role: SessionRole, requests: SessionRequests): SerialSession {
  const { vm, supervisor, grant } = context;
  const serial = new SerialSession(
    vm.name,
    context.endpoint,
    context.remoteAddress,
    channel,
    vm.serial!,
    context.log.child({ vm: vm.name }),
    (ended) => {
      context.sessions.delete(ended);
      supervisor.release(ended);
    },
    { role, sharing: supervisor.sharing },
  );
  serial.terminal = requests.terminal;
  requests.onResize = (width, height) => supervisor.sharing.recorder?.resized(serial, width, height);
  context.sessions.add(serial);
  if (role === 'observer') supervisor.join(serial, grant);
  else supervisor.claim(serial, grant, vm);
  serial.start(grant, requests.replayLines);
  (session as unknown as EventEmitter).on('break', ((_lengthMs, reply) => reply(serial.sendBreak())) satisfies BreakListener);
  return serial;
}

/**
 * `ssh -t … observe`: joins the VM's serial console read-only, if its console allows observers and
 * has room for one more (checked against the store now, not at login). A refusal is said on stderr
 * and the channel ends with status 1.
 */
export async function observeSerial(context: SerialChannelContext, store: Store, session: ssh2.Session, accept: () => ssh2.ServerChannel, requests: SessionRequests, refused: (why: string) => void): Promise<void> {
  const { vm } = context;
  const record = await store.getConsole(vm.name);
  const why = !context.isOpen()
    ? 'the console no longer admits this connection'
    : !vm.serial?.observe
    ? `${vm.name}'s serial console cannot be observed (it has no serial port, or its backend cannot share it)`
    : record
      ? context.supervisor.sharing.observerRefusal(vm.name, sharingOf(record))
      : `the console for ${vm.name} was deleted`;
  const channel = accept();
  if (why) {
    refused(why);
    channel.stderr.write(`[lifeline] observe refused: ${why}\r\n`);
    channel.exit(1);
    channel.end();
    return;
  }
  startSerialChannel(context, session, channel, 'observer', requests);
}

/**
 * `control <verb>` on a second channel of a connection: the relay escape `verb` for the
 * connection's serial session (what a client without a line start to type at uses: the desktop's
 * buttons). The answer, as for the escape, arrives on that session's stderr.
 */
export function controlSerial(sessions: Set<LiveSession>, supervisor: SessionSupervisor, channel: ssh2.ServerChannel, verb: ControlVerb): void {
  const serial = [...sessions].find((session): session is SerialSession => session instanceof SerialSession);
  if (!serial) {
    channel.stderr.write('[lifeline] no serial console session on this connection: open one (shell or observe) first\r\n');
    channel.exit(1);
  } else {
    supervisor.sharing.command(serial, verb);
    channel.write(`${verb}: sent\r\n`);
    channel.exit(0);
  }
  channel.end();
}
