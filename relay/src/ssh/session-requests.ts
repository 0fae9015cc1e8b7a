import type ssh2 from 'ssh2';

export const EXEC_REFUSAL = 'this is a VM console: it runs no commands. Connect without a command (ssh -t -p 2222 <accessId>@<host>) for the serial console, with the command observe to watch it read-only, or forward vnc:5900 for its screen (docs/relay.md)';

/** The one command a console session takes: `ssh -t -p 2222 <accessId>@<host> observe` joins read-only (docs/sharing.md). */
export const OBSERVE_COMMAND = 'observe';
/** `control request|approve|deny|handover|who` on another channel of a connection acts for its serial session (the desktop's buttons). */
const CONTROL_COMMAND = /^control (request|approve|deny|handover|who)$/;
export type ControlVerb = 'request' | 'approve' | 'deny' | 'handover' | 'who';

/** The commands a console connection takes besides a shell. */
export interface CommandHandlers {
  observe?: (accept: () => ssh2.ServerChannel, reject: () => void) => void;
  control?: (accept: () => ssh2.ServerChannel, verb: ControlVerb) => void;
}

/** The one environment variable a console session takes (OpenSSH `SetEnv`, `lifeline connect --replay N`): lines of kept output to replay. */
export const REPLAY_VARIABLE = 'LIFELINE_REPLAY';
const MAX_REPLAY_LINES = 100_000;

/** What a session channel asked for before its shell, for the serial session it becomes. */
export interface SessionRequests {
  /** `LIFELINE_REPLAY=N` (0…100000, or `all`); undefined: the whole replay. */
  replayLines: number | undefined;
  /** The client's terminal size (its pty request, then window changes), for recordings. */
  terminal: { width: number; height: number } | undefined;
  /** Called on each window change once a session runs. */
  onResize: ((width: number, height: number) => void) | undefined;
}

/** Parses `LIFELINE_REPLAY`'s value; undefined for what it cannot be. */
export function parseReplayLines(value: string): number | 'all' | undefined {
  const text = value.trim();
  if (text === 'all') return 'all';
  if (!/^\d{1,6}$/.test(text)) return undefined;
  const lines = Number(text);
  return lines <= MAX_REPLAY_LINES ? lines : undefined;
}

/**
 * The requests of a session channel other than `shell`: a pty and window changes are taken (the
 * serial line has no size), `LIFELINE_REPLAY` is kept, other variables, X11, signals and agent
 * forwarding refused; `exec observe` goes to `observe`; any other `exec` and `subsystem` (`ssh host
 * cmd`, scp, sftp) are accepted only to say why not on stderr, then end with status 1.
 */
export function serveSessionRequests(session: ssh2.Session, refused: (what: string, why: string) => void, handlers: CommandHandlers = {}): SessionRequests {
  const requests: SessionRequests = { replayLines: undefined, terminal: undefined, onResize: undefined };
  const sized = (info: { cols: number; rows: number }): boolean => {
    if (!(info.cols > 0 && info.rows > 0 && info.cols <= 10_000 && info.rows <= 10_000)) return false;
    requests.terminal = { width: info.cols, height: info.rows };
    return true;
  };
  session.on('pty', (accept, _reject, info) => {
    sized(info);
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    if (sized(info)) requests.onResize?.(info.cols, info.rows);
    accept?.();
  });
  session.on('env', (accept, reject, info) => {
    const lines = info.key === REPLAY_VARIABLE ? parseReplayLines(info.val) : undefined;
    if (lines === undefined) return reject?.();
    requests.replayLines = lines === 'all' ? undefined : lines;
    accept?.();
  });
  for (const name of ['x11', 'signal', 'auth-agent'] as const) {
    session.on(name, (_accept: unknown, reject?: () => void) => reject?.());
  }
  for (const request of ['exec', 'subsystem'] as const) {
    session.on(request, (acceptRequest: () => ssh2.ServerChannel, rejectRequest: () => void, info: { command?: string; name?: string }) => {
      const command = request === 'exec' ? info.command?.trim() : undefined;
      if (command === OBSERVE_COMMAND && handlers.observe) return handlers.observe(acceptRequest, rejectRequest);
      const control = command === undefined ? null : CONTROL_COMMAND.exec(command);
      if (control && handlers.control) return handlers.control(acceptRequest, control[1] as ControlVerb);
      const channel = acceptRequest();
      refused(request, EXEC_REFUSAL);
      channel.stderr.write(`[lifeline] ${EXEC_REFUSAL}\r\n`);
      channel.exit(1);
      channel.end();
    });
  }
  return requests;
}
