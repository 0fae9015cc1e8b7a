import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Flood {
  /** Resolves once every connection of the flood was made. */
  done: Promise<void>;
  sockets: Socket[];
  /** When each socket connected (ms since the flood began). */
  openedAt: number[];
  /** When each socket was closed by the other side (ms since the flood began), or undefined. */
  closedAt: Array<number | undefined>;
  started: number;
  destroy(): void;
}

/**
 * `count` TCP connections from `localAddress` that never send a byte, opened 250 at a time. (All at
 * once, thousands would overflow the listen backlog: the kernel drops their handshake's last ACK
 * and they sit half-open without the server ever seeing them — nothing any server can close.)
 */
export function idleFlood(port: number, count: number, localAddress = '127.0.0.1'): Flood {
  const started = Date.now();
  const sockets: Socket[] = [];
  const closedAt: Array<number | undefined> = new Array<number | undefined>(count).fill(undefined);
  const openedAt: number[] = new Array<number>(count).fill(0);
  const done = (async () => {
    for (let batch = 0; batch < count; batch += 250) {
      await Promise.all(
        Array.from({ length: Math.min(250, count - batch) }, (_, offset) =>
          new Promise<void>((resolve) => {
            const index = batch + offset;
            const socket = connect({ host: '127.0.0.1', port, localAddress });
            sockets.push(socket);
            socket.on('error', () => undefined);
            socket.on('data', () => undefined);
            socket.once('close', () => (closedAt[index] = Date.now() - started));
            socket.once('connect', () => {
              openedAt[index] = Date.now() - started;
              resolve();
            });
            socket.once('close', () => resolve());
          }),
        ),
      );
      await sleep(10);
    }
  })();
  return { done, sockets, openedAt, closedAt, started, destroy: () => sockets.forEach((s) => s.destroy()) };
}

