import type { HostPort } from '../config/config.js';
import type { Logger } from '../logger.js';
import type { AgentStreams, StreamGateway } from './agent-streams.js';
import { dialGateway, type ControlMessage } from './agent-tunnel.js';
import type { AgentMessage, GatewayMessage, HelloMessage } from './fleet-protocol.js';

/** Tunnel keepalive: a gateway (or the path to it) silent for about 15 s is given up and dialled again. */
export const TUNNEL_KEEPALIVE = { intervalMs: 5000, countMax: 2 };
/** Failed dials wait a random time in [½ d, d], d doubling from 1 s up to 30 s. */
const RETRY = { initialMs: 1000, maxMs: 30_000 };
/**
 * After an established tunnel is lost (the gateway restarted or was killed), the first redial waits
 * a random time in [0.5 s, 15 s], so a fleet's agents do not all come back in the same second.
 */
const RECONNECT_SPREAD = { minMs: 500, maxMs: 15_000 };
const LOG_EVERY_MS = 60_000;

export function retryDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(RETRY.maxMs, RETRY.initialMs * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export function reconnectDelay(random: () => number = Math.random): number {
  return Math.round(RECONNECT_SPREAD.minMs + random() * (RECONNECT_SPREAD.maxMs - RECONNECT_SPREAD.minMs));
}

export interface GatewayDialerOptions {
  /** `host:port` as the agent names this gateway. */
  address: string;
  target: HostPort;
  name: string;
  privateKey: string;
  joinToken?: string;
  /** Whether a gateway presenting this host key fingerprint is the fleet's. */
  trust(fingerprint: string): boolean;
  streams: AgentStreams;
  log: Logger;
  hello(): HelloMessage;
  onMessage(message: GatewayMessage): void;
}

/** One gateway's tunnel, kept up: dialled again with jittered, capped backoff whenever it is lost. */
export class GatewayDialer {
  connected = false;
  private send_: ((message: AgentMessage) => void) | undefined;
  private close_: (() => void) | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private lastLogged = 0;
  private done: Promise<void> | undefined;

  constructor(private readonly options: GatewayDialerOptions) {}

  get address(): string {
    return this.options.address;
  }

  start(): void {
    this.done ??= this.run();
  }

  send(message: AgentMessage): void {
    this.send_?.(message);
  }

  private async run(): Promise<void> {
    const { log } = this.options;
    let attempt = 0;
    while (!this.stopped) {
      let delay: number;
      // The streams of this tunnel answer on this tunnel, never on the one that replaces it.
      let sendHere: ((message: AgentMessage) => void) | undefined;
      const gateway: StreamGateway = { send: (message) => sendHere?.(message) };
      try {
        const tunnel = await dialGateway({
          host: this.options.target.host,
          port: this.options.target.port,
          name: this.options.name,
          privateKey: this.options.privateKey,
          ...(this.options.joinToken && { joinToken: this.options.joinToken }),
          hostKeyFingerprint: (fingerprint) => this.options.trust(fingerprint),
          keepaliveIntervalMs: TUNNEL_KEEPALIVE.intervalMs,
          keepaliveCountMax: TUNNEL_KEEPALIVE.countMax,
          log,
          hello: { ...this.options.hello() },
          // The gateway is the pinned fleet: its messages are taken as they come (a type the agent does not know is ignored).
          onMessage: (message) => this.options.onMessage(message as unknown as GatewayMessage),
          onStream: (request, accept, reject) => this.options.streams.serve(request, accept, reject, gateway),
        });
        sendHere = (message) => tunnel.send(message as unknown as ControlMessage);
        this.send_ = sendHere;
        this.close_ = () => tunnel.close();
        if (this.stopped) tunnel.close();
        this.connected = true;
        attempt = 0;
        log.info('tunnel to the gateway is up');
        const error = await tunnel.closed;
        this.connected = false;
        this.send_ = undefined;
        this.close_ = undefined;
        sendHere = undefined;
        this.options.streams.dropGateway(gateway);
        if (this.stopped) break;
        delay = reconnectDelay();
        log.warn({ err: error?.message, retryInMs: delay }, 'tunnel to the gateway lost; dialling again');
      } catch (error) {
        delay = retryDelay(attempt++);
        const refused = /refused|does not know|presented the host key/.test((error as Error).message);
        if (refused || attempt === 1 || Date.now() - this.lastLogged >= LOG_EVERY_MS) {
          this.lastLogged = Date.now();
          (refused ? log.error.bind(log) : log.warn.bind(log))({ err: (error as Error).message, retryInMs: delay, attempt }, 'cannot reach the gateway');
        }
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Stops dialling and closes the tunnel. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.close_?.();
    // A dial still under way ends by itself (its tunnel is closed the moment it opens); not waited for past a second.
    await Promise.race([this.done, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  }
}
