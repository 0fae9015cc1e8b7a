import type { Server, Socket } from 'node:net';

/* The listeners of one endpoint: binding them, and closing them with a linger for reason lines. */

export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.removeListener('error', onError);
      resolve((server.address() as { port: number }).port);
    });
  });
}

export interface Bound {
  listener: Server;
  vncListener: Server;
  sshPort: number;
  vncPort: number;
  sockets: Set<Socket>;
}

/** Time for reason lines to reach clients before their sockets are torn down. */
const LINGER_MS = 500;

/** Stops accepting at once; connections still open after a short linger (unauthenticated ones, say) are destroyed. */
export function closeServer(servers: { listener?: Server | undefined; vncListener?: Server | undefined; sockets: Set<Socket> } | undefined): void {
  if (!servers?.listener) return;
  servers.listener.close();
  servers.vncListener?.close();
  const { sockets } = servers;
  if (sockets.size === 0) return;
  setTimeout(() => {
    for (const socket of sockets) socket.destroy();
  }, LINGER_MS).unref();
}

export function bindProblem(error: NodeJS.ErrnoException, host: string, port: number): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return `port ${port} on ${host} is already in use by another program`;
    case 'EADDRNOTAVAIL':
      return `${host} is not an address of this host`;
    case 'EACCES':
      return `not allowed to listen on ${host}:${port} (ports below 1024 need privileges)`;
    default:
      return `cannot listen on ${host}:${port}: ${error.code ?? error.message}`;
  }
}
