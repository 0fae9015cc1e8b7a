import { CLOSE_EXIT_STATUS, type CloseCode } from '@lifeline/relay/client';
import { RelayApiError } from '../services/relay-api.js';

/**
 * `lifeline`'s exit codes (docs/cli.md): 0 ok, 1 error, 2 usage, 3 an `--expect` that did not match
 * in time, 130 interrupted, 255 the SSH connection failed; a session the relay closed ends with the
 * relay's own status for the reason (10…21), which plain `ssh` exits with too.
 */
export const EXIT = { ok: 0, error: 1, usage: 2, expectTimeout: 3, interrupted: 130, connectionFailed: 255, ...CLOSE_EXIT_STATUS } as const;

/** The close reason an exit status stands for, if it is one of the relay's. */
export function closeCodeOfStatus(status: number): Exclude<CloseCode, 'client-left'> | undefined {
  const found = Object.entries(CLOSE_EXIT_STATUS).find(([, value]) => value === status);
  return found?.[0] as Exclude<CloseCode, 'client-left'> | undefined;
}

/** What each close reason is, and what to do about it (`{vm}`: the VM's name). */
export const CLOSE_REASONS: Record<Exclude<CloseCode, 'client-left'>, { what: string; next?: string }> = {
  displaced: { what: 'another session was opened for {vm} (one session per VM and kind)', next: 'connect again to take it back' },
  disabled: { what: 'the console of {vm} was disabled', next: 'enable it with "lifeline console update {vm} --enabled true"' },
  expired: { what: 'the console of {vm} expired', next: 'renew it with "lifeline console update {vm} --expires-in 24h"' },
  rekeyed: { what: "the console's key was replaced", next: 'connect with the new key, or give it one of yours: "lifeline console update {vm} --generate"' },
  deleted: { what: 'the console of {vm} was deleted', next: 'create one with "lifeline console create {vm} --generate"' },
  'vm-gone': { what: '{vm} is no longer known to the relay (removed, or its hypervisor agent left)', next: 'see "lifeline vm list"' },
  shutdown: { what: 'the relay is shutting down', next: 'connect again once it is back' },
  'closed-by-admin': { what: 'an administrator closed the session' },
  'endpoint-changed': { what: 'the private endpoint of this session changed or was deleted', next: 'see "lifeline endpoints list"' },
  unavailable: { what: 'the fleet gateway lost its database', next: 'try again shortly' },
  'vm-disconnected': { what: "{vm}'s console connection ended", next: 'is the VM running? See "lifeline vm show {vm}"' },
  'observers-disallowed': { what: 'the console of {vm} stopped allowing observers', next: 'ask its owner to allow them again ("lifeline console update {vm} --allow-observers true")' },
  'unsupported-client': { what: 'the relay could not follow what the client sent' },
  'recording-unavailable': { what: 'the console of {vm} must be recorded and the relay cannot record it now', next: 'ask the relay\'s operator (its log says why)' },
};

/** An error with the exit code it ends the command with; `message` says what was wrong and what to do. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string): CliError => new CliError(message, EXIT.usage);

/** What to do after the relay's error codes, where the relay's message does not already say it. */
const NEXT_STEP: Record<string, string> = {
  VirtualMachineNotFound: 'see the VMs with "lifeline vm list"',
  ConsoleNotFound: 'create it with "lifeline console create VM --generate"',
  ConsoleDisabled: 'enable it with "lifeline console update VM --enabled true"',
  ConsoleExpired: 'renew it with "lifeline console update VM --expires-in 24h"',
  SessionNotFound: 'see the open sessions with "lifeline sessions list"',
  TokenNotFound: 'see the tokens with "lifeline tokens list"',
  AgentNotFound: 'see the agents with "lifeline agents list"',
  NotAFleetGateway: 'this relay is standalone: agents belong to a fleet gateway (docs/fleet.md)',
  Unreachable: 'check the relay with "lifeline relay list"',
  TlsCertificateChanged: 'if the certificate was replaced on purpose: lifeline relay add NAME --url URL --tls-fingerprint NEW',
};

/** One line for stderr: the relay's code, its message, and the next step. */
export function describeError(error: unknown): { text: string; exitCode: number } {
  if (error instanceof CliError) return { text: error.message, exitCode: error.exitCode };
  if (error instanceof RelayApiError) {
    const next = NEXT_STEP[error.code];
    return { text: `${error.code}: ${error.message}${next && !error.message.includes(next) ? ` (${next})` : ''}`, exitCode: EXIT.error };
  }
  return { text: (error as Error)?.message ?? String(error), exitCode: EXIT.error };
}
