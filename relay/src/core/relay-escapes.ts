/**
 * The relay's in-session escapes for a shared serial console (docs/sharing.md): at the start of a
 * line, `~` and one letter is a command to the relay instead of input for the VM. OpenSSH's own
 * escape is also `~` and it turns `~~` into one `~`, so an OpenSSH user types Enter `~~` and the
 * letter (`~~r` asks for control); another client sends `~r` as it is. `~~` at the start of a line
 * is a literal `~` for the VM, and `~` followed by anything else is passed on unchanged, so a
 * path such as `~/bin/x` typed at a prompt still reaches the guest.
 *
 * Pure and incremental: bytes arrive in chunks of any size, and a `~` at the end of one chunk
 * waits for the next. The escapes are active only while someone else is on the console (or for an
 * observer), so a lone controller's input is never changed.
 */

export type RelayEscape = 'help' | 'who' | 'request' | 'approve' | 'deny' | 'handover';

export const ESCAPE_LETTERS: Readonly<Record<string, RelayEscape>> = {
  '?': 'help',
  w: 'who',
  r: 'request',
  a: 'approve',
  d: 'deny',
  h: 'handover',
};

const TILDE = 0x7e;
const CR = 0x0d;
const LF = 0x0a;

/** What one chunk of input was: the bytes that go to the VM (in order) and the commands found between them. */
export interface EscapeResult {
  input: Buffer;
  commands: RelayEscape[];
}

export class EscapeParser {
  /** At the start of a line (the session's start counts as one). */
  private atLineStart = true;
  /** A `~` at the start of a line waits for the letter after it. */
  private pendingTilde = false;

  /**
   * Splits `chunk` into input for the VM and relay commands. The common case (no `~`) returns the
   * chunk itself. With `active` false (nobody else is on the console) every byte goes to the VM,
   * and only where lines start is followed.
   */
  feed(chunk: Buffer, active = true): EscapeResult {
    if (!this.pendingTilde && (!active || chunk.indexOf(TILDE) === -1)) {
      if (chunk.length > 0) this.atLineStart = chunk[chunk.length - 1] === CR || chunk[chunk.length - 1] === LF;
      return { input: chunk, commands: [] };
    }
    const out: number[] = [];
    const commands: RelayEscape[] = [];
    for (const byte of chunk) {
      if (this.pendingTilde) {
        this.pendingTilde = false;
        const command = ESCAPE_LETTERS[String.fromCharCode(byte)];
        if (command) {
          commands.push(command);
          // After a command the line is still at its start: Enter is not needed between two.
          this.atLineStart = true;
          continue;
        }
        // `~~` is one literal `~`; `~x` goes on as it is.
        out.push(TILDE);
        if (byte === TILDE) {
          this.atLineStart = false;
          continue;
        }
      } else if (byte === TILDE && this.atLineStart) {
        this.pendingTilde = true;
        continue;
      }
      out.push(byte);
      this.atLineStart = byte === CR || byte === LF;
    }
    return { input: Buffer.from(out), commands };
  }
}

/** The help text for `~?`, per role. */
export function escapeHelp(role: 'controller' | 'observer'): string[] {
  const lines = ['relay escapes (at the start of a line; in OpenSSH type ~~ for the ~):', '  ~~w  who is on this console', '  ~~?  this help'];
  if (role === 'observer') lines.push('  ~~r  ask the controller for control (no answer in 30 s is no)');
  else lines.push('  ~~a  hand control to the one asking', '  ~~d  refuse the request', '  ~~h  hand control to the longest-watching observer');
  return lines;
}
