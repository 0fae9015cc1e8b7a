import type { Socket } from 'node:net';
import ssh2, { type AuthContext, type Connection, type PublicKeyAuthContext } from 'ssh2';
import type { ConsoleDirectory } from '../sessions/console-seam.js';
import type { SessionGrant } from '../core/console-rules.js';
import { fingerprintOf } from '../core/ssh-public-key.js';
import { DomainError } from '../core/domain-error.js';
import type { Logger } from '../logger.js';
import type { SshMetrics } from '../metrics/relay-metrics.js';
import { ConnectionGate } from '../endpoints/connection-gate.js';
import { ChannelBudget, checkConsoleKey, ConnectionChannels, recordSshRefusal, SSH_ALGORITHMS, type LoginRefusal } from './ssh-policy.js';
import type { FailureBackoff, StartupLimiter } from '../core/preauth-limits.js';
import type { AdmittedConnection, CloseReason, LiveSession } from '../sessions/live-session.js';
import type { SessionSupervisor } from '../sessions/session-supervisor.js';
import type { Store } from '../store/store.js';
import type { HostKey } from './host-key.js';
import { openVncChannel } from './vnc-channels.js';
import { channelRefusals, OPEN_FAILURE, routeBreakRequests, sendAuthBanner, socketOf } from './ssh2-internals.js';
import { controlSerial, observeSerial, startSerialChannel, type SerialChannelContext } from './serial-channels.js';
import { serveSessionRequests } from './session-requests.js';
import type { RefusalRecorder } from '../audit/refusal-recorder.js';

/** The reserved forward destination for a VM's screen: `ssh -L 5901:vnc:5900`. */
export const VNC_HOST = 'vnc';
export const VNC_PORT = 5900;
/** The same screen read-only, beside the VM's VNC session (docs/sharing.md). */
export const VNC_OBSERVE_HOST = 'vnc-observe';
const MAX_AUTH_ATTEMPTS = 6;

const DISCONNECT_GRACE_MS = 500;
/** What a client hears when the store cannot be reached to check its key (a fleet gateway cut off from its database). */
export const CONTROL_PLANE_UNREACHABLE = 'the control plane (the fleet database) is unreachable from this gateway: no new session can start now; sessions already open go on. Try again shortly';

export interface SshConsoleServerOptions {
  hostKey: HostKey;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  store: Store;
  virtualMachines: ConsoleDirectory;
  supervisor: SessionSupervisor;
  log: Logger;
  metrics?: SshMetrics;
  /** Handshake and authentication must finish within this (OpenSSH's LoginGraceTime). */
  loginGraceTimeMs: number;
  /** MaxStartups and PerSourceMaxStartups for connections not yet authenticated. */
  startups: StartupLimiter;
  /** Delays the refusals of an address that keeps failing. */
  failures: FailureBackoff;
  /** Channels open at once on one connection (OpenSSH's MaxSessions); the same number may be opened per console and minute. */
  maxSessions: number;
  /** Failed logins and refused channels go to the audit trail through this. */
  refusals?: RefusalRecorder;
  /** A VNC observer's viewer sent a message the relay dropped (metrics). */
  onObserverDropped?: (message: string) => void;
}

/**
 * The SSH side of the relay: public-key auth as the console's access id, then a
 * `pty`+`shell` channel bridged to the VM's serial console and `direct-tcpip` to `vnc:5900`
 * bridged to its VNC server. Everything else is refused.
 * Sockets arrive from the endpoint listeners (after their source check) through `handle`.
 */
export class SshConsoleServer {
  private readonly servers = new Map<string, ssh2.Server>();
  private readonly clients = new Set<Connection>();
  private readonly gate: ConnectionGate;
  /** Channel opens left to each console (by access id) this minute: a key holder cannot open thousands. */
  private readonly channelBudget: ChannelBudget;

  constructor(private readonly options: SshConsoleServerOptions) {
    this.channelBudget = new ChannelBudget(options.maxSessions);
    this.gate = new ConnectionGate({
      startups: options.startups,
      graceMs: options.loginGraceTimeMs,
      metrics: options.metrics,
      onDropped: (remote, reason) => options.log.debug({ remote, reason }, 'SSH connection dropped before the handshake'),
    });
  }

  /** Takes over an accepted TCP connection that came in through `endpoint`. */
  handle(socket: Socket, endpoint: string): void {
    let server = this.servers.get(endpoint);
    if (!server) {
      server = new ssh2.Server(
        {
          hostKeys: [this.options.hostKey.privateKey],
          ident: 'Lifeline',
          algorithms: SSH_ALGORITHMS as ssh2.ServerConfig['algorithms'],
          keepaliveInterval: this.options.keepaliveIntervalMs,
          keepaliveCountMax: this.options.keepaliveCountMax,
        },
        (client, info) => this.onClient(client, endpoint, info.ip),
      );
      this.servers.set(endpoint, server);
    }
    // Before any SSH byte: MaxStartups, and a grace timer from accept (ssh2 only sees a client
    // once it has sent its version line, so a silent connection must be timed here).
    if (!this.gate.admit(socket)) return;
    socket.setNoDelay(true);
    server.injectSocket(socket);
  }

  private onClient(client: Connection, endpoint: string, remoteAddress: string): void {
    const log = this.options.log.child({ endpoint, remote: remoteAddress });
    this.clients.add(client);
    let grant: SessionGrant | undefined;
    let grantExpiration = 0;
    let admitted: AdmittedConnection | undefined;
    let failures = 0;
    let clientClosed = false;
    /** Set the moment the console stops admitting this connection: no new channel from then on, whatever the close grace. */
    let revoked = false;
    const sessions = new Set<LiveSession>();

    // ssh2 keeps the socket it serves; the gate admitted it in handle().
    const preauth = this.gate.guardOf(socketOf(client));
    routeBreakRequests(client);
    const refuseChannel = channelRefusals(client);
    const channels = new ConnectionChannels(this.options.maxSessions, this.channelBudget);
    /** A refused channel or request, into the log and the audit trail. */
    const channelRefused = (what: string, why: string): void =>
      recordSshRefusal(this.options.refusals, { type: 'ssh.channel.refused', channel: what, reason: why, remoteAddress, endpoint, ...(grant && { virtualMachine: grant.virtualMachine, actor: { virtualMachineAccessId: grant.accessId, keyFingerprint: grant.keyFingerprint } }) }, log);
    /** Refuses a channel with a reason OpenSSH prints (`open failed: administratively prohibited: …`), logged and audited. */
    const refuse = (reject: () => void, what: string, why: string, code: number = OPEN_FAILURE.administrativelyProhibited): void => {
      refuseChannel(reject, code, why);
      channelRefused(what, why);
    };
    /** Whether a new channel may open: under maxSessions on this connection and within the console's budget. */
    const mayOpen = (reject: () => void, what: string): boolean => {
      const why = channels.refusal(grant?.accessId);
      if (why) refuse(reject, what, why, OPEN_FAILURE.resourceShortage);
      return why === undefined;
    };
    const counted = (channel: { once(event: 'close', listener: () => void): unknown }): void => channels.counted(channel);

    client.on('authentication', (ctx: AuthContext) => {
      const refuse = (why: LoginRefusal): void => {
        this.options.metrics?.authFailed(ctx.method);
        // The client hears the generic failure; the operator sees which check failed (never the key itself).
        recordSshRefusal(this.options.refusals, 
          {
            type: 'ssh.login.failed',
            remoteAddress,
            endpoint,
            user: ctx.username.slice(0, 64),
            method: ctx.method.slice(0, 32),
            check: why,
            ...(ctx.method === 'publickey' && { keyFingerprint: fingerprintOf((ctx as PublicKeyAuthContext).key.data) }),
          },
          log,
        );
        if (++failures >= MAX_AUTH_ATTEMPTS) {
          log.info('too many authentication attempts');
          if (preauth) preauth.outcome = 'too-many-failures';
          client.end();
          return;
        }
        // An address that keeps failing waits longer and longer for each answer.
        const delay = this.options.failures.fail(remoteAddress);
        if (delay === 0) ctx.reject(['publickey']);
        else setTimeout(() => ctx.reject(['publickey']), delay).unref();
      };
      if (ctx.method !== 'publickey') {
        // `none` is how clients ask which methods exist; it is not a failure worth counting.
        if (ctx.method === 'none') ctx.reject(['publickey']);
        else refuse('method-not-allowed');
        return;
      }
      checkConsoleKey(ctx, this.options.store, this.options.virtualMachines).then(
        (result) => {
          if (typeof result === 'string' && result !== 'key-ok') return refuse(result);
          if (result !== 'key-ok') ({ grant, expiration: grantExpiration } = result);
          ctx.accept();
        },
        (error: unknown) => {
          log.error({ err: (error as Error).message }, 'authentication check failed');
          // The user is told it is not their key: OpenSSH prints the banner before "Permission denied".
          if (error instanceof DomainError && error.kind === 'unavailable') sendAuthBanner(client, `[lifeline] ${CONTROL_PLANE_UNREACHABLE}`);
          refuse('check-failed');
        },
      );
    });

    client.on('ready', () => {
      if (!grant) return client.end();
      preauth?.passed();
      const current = grant;
      admitted = {
        grant: current,
        endpoint,
        remoteAddress,
        close: async (reason: CloseReason) => {
          revoked = true;
          await Promise.all([...sessions].map((session) => session.close(reason)));
          // OpenSSH exits as soon as a disconnect arrives, dropping channel output it has not
          // printed yet: let the client leave on its own after its session closed, then end it.
          if (!clientClosed) await new Promise((resolve) => setTimeout(resolve, DISCONNECT_GRACE_MS));
          if (!clientClosed) client.end();
        },
      };
      this.options.supervisor.admit(admitted, grantExpiration);
      // The console may have changed between the key check and now: check once more.
      this.options.supervisor.revalidateInBackground(current.virtualMachine);
      log.info({ vm: current.virtualMachine }, 'client authenticated');
    });

    client.on('session', (accept, reject) => {
      if (revoked) return refuse(reject, 'session', 'the console no longer admits this connection');
      if (!mayOpen(reject, 'session')) return;
      const session = accept();
      counted(session as unknown as { once(event: 'close', listener: () => void): unknown });
      /** The serial console this connection may open now, or undefined. */
      const serialContext = (): SerialChannelContext | undefined => {
        const vm = grant && this.options.virtualMachines.get(grant.virtualMachine);
        if (!grant || !vm?.serial || !admitted || revoked) return undefined;
        return { vm, grant, endpoint, remoteAddress, log, supervisor: this.options.supervisor, sessions, isOpen: () => !revoked && !clientClosed };
      };
      const requests = serveSessionRequests(session, channelRefused, {
        observe: (acceptObserve, rejectObserve) => {
          const context = serialContext();
          if (!context) return rejectObserve();
          observeSerial(context, this.options.store, session, acceptObserve, requests, (why) => channelRefused('exec observe', why)).catch((error: unknown) => {
            log.error({ err: (error as Error).message }, 'observe check failed');
            rejectObserve();
          });
        },
        control: (acceptControl, verb) => controlSerial(sessions, this.options.supervisor, acceptControl(), verb),
      });
      session.on('shell', (acceptShell, rejectShell) => {
        const context = serialContext();
        if (!context) return rejectShell();
        // OpenSSH's ~B: a serial break where the backend has one (telnet chardev), else refused and the session goes on.
        startSerialChannel(context, session, acceptShell(), 'controller', requests);
      });
    });

    // `ssh -L 5901:vnc:5900`: the one forward destination there is, the VM's VNC stream.
    client.on('tcpip', (accept, reject, info) => {
      if (revoked) return refuse(reject, 'direct-tcpip', 'the console no longer admits this connection');
      const vm = grant && this.options.virtualMachines.get(grant.virtualMachine);
      const dest = `${info.destIP.slice(0, 64)}:${info.destPort}`;
      const observe = info.destIP === VNC_OBSERVE_HOST;
      if ((info.destIP !== VNC_HOST && !observe) || info.destPort !== VNC_PORT) return refuse(reject, `direct-tcpip ${dest}`, `only vnc:5900 can be forwarded (the VM's screen: ssh -L 5901:vnc:5900; vnc-observe:5900 to watch it read-only), not ${dest}`);
      if (!vm?.consoleTypes.includes('vnc') || !admitted) return refuse(reject, `direct-tcpip ${dest}`, `${grant?.virtualMachine ?? 'this VM'} has no VNC console`);
      if (!mayOpen(reject, `direct-tcpip ${dest}`)) return;
      openVncChannel({ vm, grant: grant!, endpoint, remoteAddress, log, supervisor: this.options.supervisor, store: this.options.store, sessions, isOpen: () => !clientClosed && !revoked, clientGone: () => clientClosed, counted, refuse, onObserverDropped: this.options.onObserverDropped }, accept, reject, observe);
    });
    // Remote forwards, other global requests and unix-socket channels: refused.
    client.on('openssh.streamlocal', (_accept, reject) => reject());
    client.on('request', (_accept, reject) => reject?.());

    client.on('error', (error: Error) => log.debug({ err: error.message }, 'ssh connection error'));
    client.on('close', () => {
      clientClosed = true;
      this.clients.delete(client);
      for (const session of sessions) void session.close({ code: 'client-left', message: 'the connection closed' });
      if (admitted) this.options.supervisor.forget(admitted);
    });
  }

  /** Ends every SSH connection (after sessions had their reason line). */
  close(): void {
    for (const client of this.clients) client.end();
    this.clients.clear();
    this.servers.clear();
  }
}
