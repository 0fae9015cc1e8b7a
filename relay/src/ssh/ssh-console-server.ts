import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import ssh2, { type AuthContext, type Connection, type PublicKeyAuthContext } from 'ssh2';
import type { VirtualMachineRegistry } from '../backends/virtual-machines.js';
import { mayAuthenticate, type SessionGrant } from '../core/console-rules.js';
import { fingerprintOf } from '../core/ssh-public-key.js';
import type { Logger } from '../logger.js';
import type { SshMetrics } from '../metrics/relay-metrics.js';
import { guardPreauth, type PreauthGuard } from '../endpoints/preauth-guard.js';
import type { FailureBackoff, StartupLimiter } from '../core/preauth-limits.js';
import type { AdmittedConnection, CloseReason, LiveSession } from '../sessions/live-session.js';
import type { SessionSupervisor } from '../sessions/session-supervisor.js';
import type { Store } from '../store/store.js';
import type { HostKey } from './host-key.js';
import { streamClient, VncSession } from '../vnc/vnc-session.js';
import { routeBreakRequests, type BreakListener } from './break-request.js';
import { SerialSession } from './serial-session.js';

/** The reserved forward destination for a VM's screen: `ssh -L 5901:vnc:5900`. */
export const VNC_HOST = 'vnc';
export const VNC_PORT = 5900;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_AUTH_ATTEMPTS = 6;

/**
 * What the relay offers, so that ssh-audit finds nothing to fail or warn about: curve25519 key
 * exchange only (no NIST curves, no SHA-1 groups), the Ed25519 host key, AEAD ciphers, only
 * encrypt-then-MAC SHA-2 MACs (used with no AEAD cipher), and no compression. ssh2 adds the
 * strict key exchange marker (kex-strict-s-v00@openssh.com) itself. OpenSSH ≥ 6.5, PuTTY ≥ 0.65
 * and ssh2's client all speak these.
 */
export const SSH_ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org'],
  serverHostKey: ['ssh-ed25519'],
  cipher: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com'],
  hmac: ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com'],
  compress: ['none'],
};
const DISCONNECT_GRACE_MS = 500;

export interface SshConsoleServerOptions {
  hostKey: HostKey;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  store: Store;
  virtualMachines: VirtualMachineRegistry;
  supervisor: SessionSupervisor;
  log: Logger;
  metrics?: SshMetrics;
  /** Handshake and authentication must finish within this (OpenSSH's LoginGraceTime). */
  loginGraceTimeMs: number;
  /** MaxStartups and PerSourceMaxStartups for connections not yet authenticated. */
  startups: StartupLimiter;
  /** Delays the refusals of an address that keeps failing. */
  failures: FailureBackoff;
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
  private readonly preauth = new WeakMap<Socket, PreauthGuard>();

  constructor(private readonly options: SshConsoleServerOptions) {}

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
    const guard = guardPreauth(socket, {
      startups: this.options.startups,
      graceMs: this.options.loginGraceTimeMs,
      metrics: this.options.metrics,
      onDropped: (remote, reason) => this.options.log.debug({ remote, reason }, 'SSH connection dropped before the handshake'),
    });
    if (!guard) return;
    this.preauth.set(socket, guard);
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

    // ssh2 keeps the socket it serves; the pre-auth state was made for it in handle().
    const preauth = this.preauth.get((client as unknown as { _sock: Socket })._sock);
    routeBreakRequests(client);

    client.on('authentication', (ctx: AuthContext) => {
      const refuse = (): void => {
        this.options.metrics?.authFailed(ctx.method);
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
        else refuse();
        return;
      }
      this.checkKey(ctx).then(
        (result) => {
          if (result === 'refused') return refuse();
          if (result !== 'key-ok') ({ grant, expiration: grantExpiration } = result);
          ctx.accept();
        },
        (error: unknown) => {
          log.error({ err: (error as Error).message }, 'authentication check failed');
          refuse();
        },
      );
    });

    client.on('ready', () => {
      if (!grant) return client.end();
      preauth?.passed();
      this.options.failures.succeed(remoteAddress);
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
      if (revoked) return reject();
      const session = accept();
      session.on('pty', (acceptPty) => acceptPty?.());
      session.on('window-change', (acceptChange) => acceptChange?.());
      for (const refused of ['env', 'x11', 'signal', 'auth-agent', 'exec', 'subsystem', 'sftp'] as const) {
        session.on(refused, (_accept: unknown, reject?: () => void) => reject?.());
      }
      session.on('shell', (acceptShell, rejectShell) => {
        const vm = grant && this.options.virtualMachines.get(grant.virtualMachine);
        if (!vm?.serial || !admitted || revoked) return rejectShell();
        const channel = acceptShell();
        const serial = new SerialSession(vm.name, endpoint, remoteAddress, channel, vm.serial, log.child({ vm: vm.name }), (ended) => {
          sessions.delete(ended);
          this.options.supervisor.release(ended);
        });
        sessions.add(serial);
        this.options.supervisor.claim(serial, grant);
        serial.start();
        // OpenSSH's ~B: a serial break where the backend has one (telnet chardev), else refused and the session goes on.
        (session as unknown as EventEmitter).on('break', ((_lengthMs, reply) => reply(serial.sendBreak())) satisfies BreakListener);
      });
    });

    // `ssh -L 5901:vnc:5900`: the one forward destination there is, the VM's VNC stream.
    client.on('tcpip', (accept, reject, info) => {
      if (revoked) return reject();
      const vm = grant && this.options.virtualMachines.get(grant.virtualMachine);
      if (info.destIP !== VNC_HOST || info.destPort !== VNC_PORT || !vm?.config.vnc || !admitted) {
        log.info({ dest: `${info.destIP.slice(0, 64)}:${info.destPort}` }, 'forward refused');
        return reject();
      }
      vm.openVnc().then(
        (vnc) => {
          // Revoked or gone while the VM's screen was opening: never admitted.
          if (clientClosed || revoked) {
            vnc.socket.destroy();
            if (!clientClosed) reject();
            return;
          }
          const channel = accept();
          const closeChannel = async (): Promise<void> => {
            // A forwarded channel has no room for a reason: the client sees the stream end.
            try {
              channel.close();
            } catch {
              // Gone with its connection.
            }
          };
          const vmLog = log.child({ vm: vm.name });
          const session = new VncSession(vm.name, 'ssh', endpoint, remoteAddress, streamClient(channel, closeChannel, vmLog), vnc, vmLog, (ended) => {
            sessions.delete(ended);
            this.options.supervisor.release(ended);
          });
          sessions.add(session);
          this.options.supervisor.claim(session, grant);
          session.start();
        },
        () => reject(),
      );
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

  /** Refusals look the same whatever was wrong: unknown user, wrong key, disabled or expired console. */
  private async checkKey(ctx: PublicKeyAuthContext): Promise<{ grant: SessionGrant; expiration: number } | 'key-ok' | 'refused'> {
    if (!UUID.test(ctx.username)) return 'refused';
    const record = await this.options.store.getConsoleByAccessId(ctx.username);
    const keyFingerprint = fingerprintOf(ctx.key.data);
    if (!record || !mayAuthenticate(record, keyFingerprint, Date.now())) return 'refused';
    if (!this.options.virtualMachines.get(record.virtualMachine)) return 'refused';
    if (!ctx.signature || !ctx.blob) return 'key-ok';
    const key = ssh2.utils.parseKey(record.keyData);
    if (key instanceof Error || !key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return 'refused';
    return { grant: { virtualMachine: record.virtualMachine, accessId: record.accessId, keyFingerprint }, expiration: record.expiration };
  }

  /** Ends every SSH connection (after sessions had their reason line). */
  close(): void {
    for (const client of this.clients) client.end();
    this.clients.clear();
    this.servers.clear();
  }
}
