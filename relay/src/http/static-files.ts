import type { IncomingMessage, ServerResponse } from 'node:http';
import type SendFunction from 'send';

/**
 * The one static-file path of the relay's noVNC page and the desktop's browser mode, on `send`
 * (the file server under Express's and fastify's static middleware): it resolves the request
 * path under `root` and refuses whatever leaves it (`..`, encoded or not), dotfiles and
 * directories; it sets Content-Type, Content-Length and answers HEAD. Every refusal is the
 * same plain 404, so a client learns nothing about what exists outside `root`.
 *
 * `path` is the URL path below `root`, still percent-encoded (as in the request line).
 */
export function serveStaticFile(request: IncomingMessage, response: ServerResponse, root: string, path: string): void {
  const notFound = (): void => {
    if (response.headersSent) return void response.destroy();
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
  };
  // Loaded on the first file served: send and its MIME database cost ~40 ms at start for a relay that may never serve one.
  sendModule ??= import('send').then((module) => (module as { default?: Send }).default ?? (module as unknown as Send));
  sendModule.then(
    (send) =>
      send(request, path, { root, dotfiles: 'deny', index: false, cacheControl: false, etag: false, lastModified: false })
        .on('error', notFound)
        .on('directory', notFound)
        .pipe(response),
    notFound,
  );
}

type Send = typeof SendFunction;
let sendModule: Promise<Send> | undefined;
