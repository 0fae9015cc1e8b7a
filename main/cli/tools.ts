import which from 'which';
import { CliError } from './errors.js';

/** OpenSSH's client: `LIFELINE_SSH`, else `ssh` on the PATH. */
export function sshBinary(): string {
  const given = process.env.LIFELINE_SSH;
  if (given) return given;
  const found = which.sync('ssh', { nothrow: true });
  if (!found) throw new CliError('OpenSSH\'s client (ssh) is not installed: install it (Debian/Ubuntu: sudo apt-get install openssh-client; macOS has it), or set LIFELINE_SSH to its path.');
  return found;
}
