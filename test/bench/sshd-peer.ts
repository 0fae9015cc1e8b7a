import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitForPort } from './clients.js';

/**
 * The peer a user would use instead: Debian's OpenSSH sshd with its own config and port,
 * reaching a console with `socat - UNIX-CONNECT:<socket>` (the socket path is the command).
 * `defaultLimits` keeps OpenSSH's own pre-authentication limits instead of the raised ones.
 */
export async function startSshd(dir: string, port: number, authorizedKey: string, options: { defaultLimits?: boolean } = {}): Promise<{ stop: () => void; port: number; pid: number }> {
  mkdirSync(dir, { recursive: true });
  try {
    mkdirSync('/run/sshd', { recursive: true }); // its privilege-separation folder, when run as root
  } catch {
    // Not root: sshd runs without privilege separation and can only log in this user.
  }
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  writeFileSync(join(dir, 'authorized_keys'), `${authorizedKey}\n`, { mode: 0o600 });
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding yes',
      'AllowStreamLocalForwarding yes',
      'ForceCommand exec socat - "UNIX-CONNECT:$SSH_ORIGINAL_COMMAND"',
      'LogLevel ERROR',
      // The scale sections open sessions 50 at a time; the flood section keeps sshd's defaults (MaxStartups 10:30:100, LoginGraceTime 120).
      ...(options.defaultLimits ? [] : ['MaxStartups 2000:30:5000', 'MaxSessions 100']),
    ].join('\n'),
  );
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await waitForPort(port);
  } catch (error) {
    child.kill('SIGTERM');
    throw error;
  }
  return { port, pid: child.pid!, stop: () => child.kill('SIGTERM') };
}
