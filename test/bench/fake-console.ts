import { createServer, type Server, type Socket } from 'node:net';

/** Ctrl-A asks the console to flood; every other byte is echoed back. */
export const FLOOD_TRIGGER = 0x01;
/** Ctrl-B, as the first byte of a read, makes the console swallow `floodBytes` of input and then answer SINK_DONE. */
export const SINK_TRIGGER = 0x02;
export const SINK_DONE = 0x4b;

export interface FakeConsole {
  path: string;
  close(): void;
}

/**
 * A unix-socket server that behaves like QEMU's serial chardev for measurement: one client
 * at a time (later ones are dropped while one is connected), echo mode (every byte comes
 * back) and flood mode (Ctrl-A makes it write `floodBytes` as fast as the reader takes
 * them), and a sink (Ctrl-B: it reads `floodBytes` of input, then answers one byte). `multiClient` serves any number of clients, as QEMU's VNC server does.
 */
export function startFakeConsole(path: string, floodBytes: number, multiClient = false): Promise<FakeConsole> {
  const clients = new Set<Socket>();
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const server: Server = createServer((socket) => {
    if (!multiClient && clients.size > 0) {
      socket.destroy();
      return;
    }
    clients.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => clients.delete(socket));
    socket.on('error', () => undefined);
    let sinking = 0;
    socket.on('data', (data: Buffer) => {
      if (sinking > 0 || data[0] === SINK_TRIGGER) {
        if (sinking === 0) {
          sinking = floodBytes;
          data = data.subarray(1);
        }
        sinking -= data.length;
        if (sinking <= 0) {
          sinking = 0;
          socket.write(Buffer.from([SINK_DONE]));
        }
        return;
      }
      // Bytes may arrive coalesced ("x" then Ctrl-A as one chunk): echo up to the trigger, then flood.
      const trigger = data.indexOf(FLOOD_TRIGGER);
      if (trigger !== 0) socket.write(trigger < 0 ? data : data.subarray(0, trigger));
      if (trigger < 0) return;
      let left = floodBytes;
      const pump = (): void => {
        while (left > 0 && !socket.destroyed) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          if (!socket.write(piece)) return void socket.once('drain', pump);
        }
      };
      pump();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () =>
      resolve({
        path,
        close: () => {
          for (const client of clients) client.destroy();
          server.close();
        },
      }),
    );
  });
}
