import { constants, openSync } from 'node:fs';
import { connect, type OnReadOpts, type Socket } from 'node:net';
import { ReadStream } from 'node:tty';
import type { SocketAddress } from '../config/config.js';

/**
 * Opens a stream to a console channel; resolves once connected, rejects with the socket error.
 * With `onread`, reads go to its buffers and callback instead of 'data' events.
 *
 * A unix socket whose listen queue is full refuses a connect at once with EAGAIN instead of
 * queueing it as TCP does. QEMU listens on its VNC socket with a backlog of 1, so a screen opened
 * while a busy (TCG) QEMU has not yet accepted the previous connection fails spuriously: such a
 * connect is retried, with a growing pause, until the deadline.
 */
export function connectTo(address: SocketAddress, timeoutMs = 5000, onread?: OnReadOpts): Promise<Socket> {
  if (address.kind === 'pty') return openPty(address.path);
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    let pause = 10;
    const attempt = (): void => {
      const socket = address.kind === 'unix' ? connect({ path: address.path, onread }) : connect({ host: address.host, port: address.port, onread });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
      }, Math.max(0, deadline - Date.now()));
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (error.code === 'EAGAIN' && Date.now() + pause < deadline) {
          setTimeout(attempt, pause);
          pause = Math.min(pause * 2, 200);
          return;
        }
        reject(error);
      });
    };
    attempt();
  });
}

/**
 * A pty (libvirt's `<serial type='pty'>`: QEMU holds the master, the relay opens the
 * `/dev/pts/N` it names) in raw mode, as a socket: reads and writes pass bytes unchanged.
 */
async function openPty(path: string): Promise<Socket> {
  const fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY);
  const stream = new ReadStream(fd);
  stream.setRawMode(true);
  return stream;
}
