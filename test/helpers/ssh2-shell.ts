import ssh2 from 'ssh2';

/**
 * Connects with ssh2's client as `user` and opens a shell: for what OpenSSH cannot do on cue
 * (hold a channel open unread, open a second channel, write at an exact moment). The caller
 * ends `client` (register it for cleanup first: it is returned even when the shell is refused).
 */
export async function openSsh2Shell(options: { port: number; user: string; privateKey: Buffer | string; host?: string; localAddress?: string }): Promise<{ client: ssh2.Client; shell: ssh2.ClientChannel }> {
  const client = new ssh2.Client();
  try {
    const shell = await new Promise<ssh2.ClientChannel>((resolve, reject) => {
      client.on('ready', () => client.shell({ term: 'xterm' }, (error, channel) => (error ? reject(error) : resolve(channel))));
      client.on('error', reject);
      client.connect({ host: options.host ?? '127.0.0.1', port: options.port, username: options.user, privateKey: options.privateKey, readyTimeout: 15_000, ...(options.localAddress && { localAddress: options.localAddress }) });
    });
    return { client, shell };
  } catch (error) {
    client.end();
    throw error;
  }
}
