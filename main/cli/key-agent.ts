import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { CliError } from './errors.js';

/**
 * A folder only this user can enter, for agent sockets: `$XDG_RUNTIME_DIR/lifeline` (a tmpfs of
 * the user's own), else `<tmp>/lifeline-<uid>`. Refused when another user owns it or can enter it.
 */
export function privateRuntimeDir(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  const uid = process.getuid?.() ?? 0;
  const dir = runtime ? join(runtime, 'lifeline') : join(tmpdir(), `lifeline-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o077) !== 0) {
    throw new CliError(`${dir} is not a private folder of yours (owner ${stat.uid}, mode ${(stat.mode & 0o777).toString(8)}): remove it, or set XDG_RUNTIME_DIR to one.`);
  }
  return dir;
}

const REQUEST_IDENTITIES = 11;
const SIGN_REQUEST = 13;

/**
 * Whole agent messages for ssh2's AgentProtocol, with the body of any other request dropped: its
 * parser does not skip the body of a message type it does not know (OpenSSH ≥ 8.9 sends the
 * `session-bind@openssh.com` extension first), and would read that body as the next messages. A
 * bare type byte still gets its SSH_AGENT_FAILURE, in order.
 */
class AgentFramer extends Transform {
  private pending: Buffer = Buffer.alloc(0);

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(0);
      if (length < 1 || length > 256 * 1024) return done(new Error('malformed agent message'));
      if (this.pending.length < 4 + length) break;
      const message = this.pending.subarray(0, 4 + length);
      this.pending = this.pending.subarray(4 + length);
      const type = message[4]!;
      this.push(type === REQUEST_IDENTITIES || type === SIGN_REQUEST ? message : Buffer.from([0, 0, 0, 1, type]));
    }
    done();
  }
}

export interface KeyAgent {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * An SSH agent in this process that holds one private key and serves it on a unix socket in a
 * private folder, for OpenSSH's `IdentityAgent`: the key reaches `ssh` without being written to
 * any file, and the agent ends with this process. It lists the key and signs with it, nothing else
 * (no adding, removing or locking). A socket left at `path` by an earlier run is replaced.
 */
export async function startKeyAgent(privateKey: string, path: string): Promise<KeyAgent> {
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error) throw new CliError(`The key in the keychain cannot be read (${parsed.message}); replace it with "lifeline console update VM --generate".`);
  const blob = parsed.getPublicSSH();
  const server: Server = createServer((socket) => {
    const protocol = new ssh2.AgentProtocol(false);
    protocol.on('identities', (request) => protocol.getIdentitiesReply(request, [parsed]));
    protocol.on('sign', (request, publicKey, data, flags) => {
      if (!publicKey.getPublicSSH().equals(blob)) return protocol.failureReply(request);
      const signature = parsed.sign(data, flags.hash);
      if (signature instanceof Error) return protocol.failureReply(request);
      protocol.signReply(request, signature);
    });
    protocol.on('error', () => socket.destroy());
    socket.on('error', () => protocol.destroy());
    socket.pipe(new AgentFramer()).pipe(protocol).pipe(socket);
  });
  try {
    unlinkSync(path);
  } catch {
    // None there.
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  server.unref();
  const inode = lstatSync(path).ino;
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Another run may have taken the path since: only our own socket is removed.
        try {
          if (lstatSync(path).ino === inode) unlinkSync(path);
        } catch {
          // Gone already.
        }
      }),
  };
}
