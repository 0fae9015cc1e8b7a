import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { fingerprintOf } from '../core/ssh-public-key.js';
import type { StreamRequest } from './fleet-protocol.js';
import { socketOf } from '../ssh/ssh2-internals.js';
import type { Logger } from '../logger.js';

/*
 * The tunnel between a hypervisor agent and a gateway: one SSH connection the agent dials (ssh2 on
 * both ends: the agent listens on nothing). The agent authenticates with its own key and pins the
 * fleet's host key. Over it:
 * - a control channel: the agent's `exec lifeline-agent/1`, JSON lines both ways (hello, VM changes,
 *   power, break, revocations);
 * - one forwarded channel per console stream, opened by the gateway: the agent asks for
 *   `tcpip-forward` of `lifeline:1` once, and each `forwarded-tcpip` channel names what it is for
 *   (a JSON StreamRequest) in its originator address, so a stream costs no extra round trip.
 */

export const CONTROL_COMMAND = 'lifeline-agent/1';
/**
 * The tunnel's algorithms: both ends are Lifeline, so only what is strong and cheap here.
 * AES-GCM first: OpenSSL runs it on AES-NI, faster per byte than chacha20-poly1305 (which the
 * console port prefers for OpenSSH clients), and every console byte of the fleet crosses it twice.
 */
export const TUNNEL_ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org'],
  serverHostKey: ['ssh-ed25519'],
  cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com'],
  hmac: ['hmac-sha2-256-etm@openssh.com'],
  compress: ['none'],
};
const BIND = { address: 'lifeline', port: 1 };

export type { StreamRequest } from './fleet-protocol.js';

export type ControlMessage = { type: string } & Record<string, unknown>;

/** The gateway's side of one agent's tunnel. */
export interface AgentLink {
  readonly name: string;
  readonly keyFingerprint: string;
  send(message: ControlMessage): void;
  onMessage(listener: (message: ControlMessage) => void): void;
  onClose(listener: () => void): void;
  /** A new stream to one of the agent's consoles; rejects when the agent refuses it. */
  openStream(request: StreamRequest): Promise<Duplex>;
  close(): void;
}

export interface AgentTunnelServerOptions {
  hostKey: string;
  /**
   * Whether this agent may connect with this key (its fingerprint), called for every attempt:
   * 'allowed', 'join' (a name and key not registered yet: it may join with a join token as its
   * password, after proving it holds the key) or 'refused' (another key, or a deleted agent).
   */
  authorize(name: string, keyFingerprint: string): Promise<'allowed' | 'join' | 'refused'>;
  /** Redeems `token` for this agent and key; true once the key is registered. */
  join(name: string, keyFingerprint: string, token: string): Promise<boolean>;
  /** An agent whose control channel is open. */
  onAgent(link: AgentLink): void;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  log: Logger;
}

/** JSON lines in, JSON lines out, on one channel. */
function jsonLines(channel: Duplex, onMessage: (message: ControlMessage) => void, log: Logger): (message: ControlMessage) => void {
  const lines = createInterface({ input: channel, crlfDelay: Infinity });
  lines.on('line', (line) => {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      log.warn({ line: line.slice(0, 80) }, 'agent tunnel: a control line that is not JSON; ignored');
      return;
    }
    if (typeof message === 'object' && message !== null && typeof (message as ControlMessage).type === 'string') onMessage(message as ControlMessage);
  });
  return (message) => void channel.write(`${JSON.stringify(message)}\n`);
}

/** Where agents dial in (`agents.listen`): SSH with public-key authentication only, no shell, no other forwards. */
export class AgentTunnelServer {
  private readonly server: ssh2.Server;
  private readonly clients = new Set<ssh2.Connection>();

  constructor(private readonly options: AgentTunnelServerOptions) {
    this.server = new ssh2.Server(
      { hostKeys: [options.hostKey], algorithms: TUNNEL_ALGORITHMS, keepaliveInterval: options.keepaliveIntervalMs, keepaliveCountMax: options.keepaliveCountMax } as ssh2.ServerConfig,
      (client) => this.onClient(client),
    );
  }

  private onClient(client: ssh2.Connection): void {
    const { log } = this.options;
    this.clients.add(client);
    // Window adjustments and keystrokes are small packets: Nagle would hold them back behind unacknowledged data.
    socketOf(client)?.setNoDelay(true);
    let name = '';
    let keyFingerprint = '';
    let forwarded = false;
    /** A new agent that proved it holds this key, and may now give its join token. */
    let joining: { name: string; keyFingerprint: string } | undefined;
    client.on('error', (error) => {
      log.debug({ err: error.message }, 'agent tunnel: connection error');
      // ssh2 ends a connection whose keepalives go unanswered politely, and a frozen agent never answers the end: drop it.
      if ((error as { level?: string }).level === 'client-timeout') socketOf(client)?.destroy();
    });
    client.on('close', () => this.clients.delete(client));
    client.on('authentication', (ctx) => {
      const failed = (error: Error): void => {
        log.error({ agent: ctx.username.slice(0, 64), err: error.message }, 'agent tunnel: cannot check the agent; refused');
        ctx.reject(['publickey']);
      };
      if (ctx.method === 'password' && joining && joining.name === ctx.username) {
        const pending = joining;
        this.options.join(pending.name, pending.keyFingerprint, ctx.password).then((joined) => {
          if (!joined) return ctx.reject([]);
          name = pending.name;
          keyFingerprint = pending.keyFingerprint;
          ctx.accept();
        }, failed);
        return;
      }
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const fingerprint = fingerprintOf(ctx.key.data);
      this.options.authorize(ctx.username, fingerprint).then((verdict) => {
        if (verdict === 'refused') return ctx.reject(['publickey']);
        if (!ctx.signature || !ctx.blob) return ctx.accept();
        const key = ssh2.utils.parseKey(ctx.key.data);
        if (key instanceof Error || !key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.reject(['publickey']);
        if (verdict === 'join') {
          // The key is proven; the join token (the password method, partial success) makes it the agent's.
          joining = { name: ctx.username, keyFingerprint: fingerprint };
          return ctx.reject(['password'], true);
        }
        name = ctx.username;
        keyFingerprint = fingerprint;
        ctx.accept();
      }, failed);
    });
    client.on('request', (accept, reject, kind, info) => {
      const { bindAddr, bindPort } = info as { bindAddr?: string; bindPort?: number };
      if (kind === 'tcpip-forward' && bindAddr === BIND.address && bindPort === BIND.port && accept) {
        forwarded = true;
        accept(BIND.port);
      } else reject?.();
    });
    client.on('session', (acceptSession) => {
      const session = acceptSession();
      session.on('exec', (acceptExec, rejectExec, info) => {
        if (info.command !== CONTROL_COMMAND || !name) return rejectExec();
        const channel = acceptExec();
        const messageListeners: Array<(message: ControlMessage) => void> = [];
        const closeListeners: Array<() => void> = [];
        const send = jsonLines(channel, (message) => messageListeners.forEach((listener) => listener(message)), log);
        client.once('close', () => closeListeners.forEach((listener) => listener()));
        this.options.onAgent({
          name,
          keyFingerprint,
          send,
          onMessage: (listener) => messageListeners.push(listener),
          onClose: (listener) => closeListeners.push(listener),
          openStream: (request) =>
            new Promise((resolve, reject) => {
              if (!forwarded) return reject(new Error(`agent ${name} has not asked for its streams yet`));
              client.forwardOut(BIND.address, BIND.port, JSON.stringify(request), 0, (error, stream) => (error ? reject(error) : resolve(stream)));
            }),
          close: () => client.end(),
        });
      });
      session.on('pty', (_accept, reject) => reject?.());
      session.on('shell', (_accept, reject) => reject());
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  close(): Promise<void> {
    for (const client of this.clients) client.end();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface AgentTunnelClientOptions {
  host: string;
  port: number;
  name: string;
  privateKey: string;
  /** A join token, for an agent whose key the fleet does not know yet. */
  joinToken?: string;
  /**
   * The fleet's host key fingerprint (SHA256:…); a gateway presenting another key is refused.
   * A function decides for itself (trust on first use), given the fingerprint presented.
   */
  hostKeyFingerprint: string | ((fingerprint: string) => boolean);
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  log: Logger;
  /** The first control message (the agent's hello). */
  hello: ControlMessage;
  onMessage(message: ControlMessage): void;
  /** A stream the gateway opened; `accept` it to get the channel, or `reject`. */
  onStream(request: StreamRequest, accept: () => Duplex, reject: () => void): void;
}

/** The agent's side: dials one gateway, opens the control channel, and serves the streams the gateway opens. */
export function dialGateway(options: AgentTunnelClientOptions): Promise<{ send(message: ControlMessage): void; close(): void; closed: Promise<Error | undefined> }> {
  const client = new ssh2.Client();
  let lastError: Error | undefined;
  const closed = new Promise<Error | undefined>((resolve) => client.once('close', () => resolve(lastError)));
  return new Promise((resolve, reject) => {
    let pinned = true;
    let presented = '';
    let triedToken = false;
    client.once('error', (error) => {
      if (!pinned) lastError = new Error(`the gateway at ${options.host}:${options.port} presented the host key ${presented}, not the fleet's${typeof options.hostKeyFingerprint === 'string' ? ` (${options.hostKeyFingerprint})` : ''}; refused`);
      else if ((error as { level?: string }).level === 'client-authentication') {
        lastError = new Error(
          triedToken
            ? `the gateway at ${options.host}:${options.port} refused the join token for agent ${options.name}: it is used, expired or for another agent name, or the name is taken by another key (a deleted agent needs a new token); make a new one with POST /v1/agentJoinTokens`
            : `the gateway at ${options.host}:${options.port} does not know agent ${options.name} with this key (or the agent was deleted): join it with a token (POST /v1/agentJoinTokens, then joinToken: or LIFELINE_JOIN_TOKEN)`,
        );
      } else lastError = error;
      reject(lastError);
    });
    client.on('tcp connection', (info, accept, rejectStream) => {
      let request: StreamRequest;
      try {
        request = JSON.parse(info.srcIP) as StreamRequest;
      } catch {
        return rejectStream();
      }
      options.onStream(request, accept, rejectStream);
    });
    client.once('ready', () => {
      client.setNoDelay(true);
      client.forwardIn(BIND.address, BIND.port, (error) => {
        if (error) return reject(error);
        client.exec(CONTROL_COMMAND, (execError, channel) => {
          if (execError) return reject(execError);
          const send = jsonLines(channel, options.onMessage, options.log);
          send(options.hello);
          resolve({ send, close: () => client.end(), closed });
        });
      });
    });
    client.connect({
      host: options.host,
      port: options.port,
      username: options.name,
      privateKey: options.privateKey,
      authHandler: (methodsLeft: ssh2.AuthenticationType[] | null, partialSuccess: boolean | null, next: ssh2.NextAuthHandler) => {
        if (methodsLeft === null) return next({ type: 'publickey', username: options.name, key: options.privateKey });
        if (partialSuccess && methodsLeft.includes('password') && options.joinToken && !triedToken) {
          triedToken = true;
          return next({ type: 'password', username: options.name, password: options.joinToken });
        }
        (next as unknown as (method: false) => void)(false); // no more methods (ssh2's types leave `false` out)
      },
      keepaliveInterval: options.keepaliveIntervalMs,
      keepaliveCountMax: options.keepaliveCountMax,
      readyTimeout: 10_000,
      algorithms: TUNNEL_ALGORITHMS as ssh2.ConnectConfig['algorithms'],
      hostVerifier: (key: Buffer) => {
        presented = fingerprintOf(key);
        const expected = options.hostKeyFingerprint;
        pinned = typeof expected === 'string' ? presented === expected : expected(presented);
        return pinned;
      },
    });
  });
}
