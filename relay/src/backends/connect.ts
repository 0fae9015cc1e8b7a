import { constants, openSync } from 'node:fs';
import { connect, type OnReadOpts, type Socket } from 'node:net';
import { ReadStream } from 'node:tty';
import type { SocketAddress } from '../config/config.js';

/**
 * Opens a stream to a console channel; resolves once connected, rejects with the socket error.
 * With `onread`, reads go to its buffers and callback instead of 'data' events.
 */
export function connectTo(address: SocketAddress, timeoutMs = 5000, onread?: OnReadOpts): Promise<Socket> {
  if (address.kind === 'pty') return openPty(address.path);
  return new Promise((resolve, reject) => {
    const socket = address.kind === 'unix' ? connect({ path: address.path, onread }) : connect({ host: address.host, port: address.port, onread });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
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
