/**
 * Removes the requests a terminal answers from console output that is being replayed.
 *
 * The replay on attach re-sends what the guest printed before, and with it the queries the
 * guest sent then: BusyBox, many shells and `resize` send `ESC[6n` (where is the cursor?)
 * after a prompt. A terminal that answers (xterm.js, tmux, most emulators) would type
 * `ESC[<row>;<col>R` into the VM on every attach — garbage at a `login:` prompt, and an end
 * to OpenSSH's `~` escapes, which only work at the start of a line. The guest asked long ago
 * and is not waiting, so an old query is removed from the replay; live output is never touched.
 *
 * Removed (7-bit forms; 8-bit C1 controls are not interpreted, as UTF-8 terminals do not):
 * - CSI: DSR/DECDSR `n` (none or `?`), DA1/DA2/DA3 `c`, DECREQTPARM `x`, DECRQM `$p`,
 *   XTVERSION `>q`, window reports `t` (11, 13-16, 18-21), kitty keyboard `?u`,
 *   XTQMODKEYS `?m`, DECRQPSR `$w`, DECRQTSR `$u`, DECRQCRA `*y`, XTSMGRAPHICS `?S`;
 * - OSC colour and clipboard queries (4, 5, 10-19, 52 with a `?` field);
 * - DCS DECRQSS (`$q`) and XTGETTCAP (`+q`); DECID `ESC Z`; ENQ (answerback).
 * An unfinished sequence at the very end is kept as it is: its end arrives live.
 */

const ESC = 0x1b;
const ENQ = 0x05;
const BEL = 0x07;
const WINDOW_REPORTS = new Set([11, 13, 14, 15, 16, 18, 19, 20, 21]);
const OSC_QUERY_CODES = new Set([4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 52]);

/** Whether a complete CSI sequence (its parameter, intermediate and final bytes) asks for an answer. */
function isCsiQuery(params: string, intermediates: string, final: string): boolean {
  const prefix = /^[<=>?]/.test(params) ? params[0]! : '';
  const first = Number.parseInt(params.slice(prefix.length).split(';')[0] || '0', 10);
  switch (`${intermediates}${final}`) {
    case 'n':
      return prefix === '' || prefix === '?';
    case 'c':
      return prefix === '' || prefix === '>' || prefix === '=';
    case 'x':
      return prefix === '' && first <= 1;
    case '$p':
    case '$w':
    case '$u':
    case '*y':
      return true;
    case 'q':
      return prefix === '>';
    case 't':
      return prefix === '' && WINDOW_REPORTS.has(first);
    case 'u':
    case 'm':
    case 'S':
      return prefix === '?';
    default:
      return false;
  }
}

function isOscQuery(payload: string): boolean {
  const fields = payload.split(';');
  return OSC_QUERY_CODES.has(Number(fields[0])) && fields.slice(1).includes('?');
}

function isDcsQuery(payload: string): boolean {
  return payload.startsWith('$q') || payload.startsWith('+q');
}

/** Where the string sequence that starts its payload at `from` ends (the index after its terminator), or -1 when unfinished. */
function stringEnd(data: Buffer, from: number, bellEnds: boolean): { payloadEnd: number; end: number } | undefined {
  for (let i = from; i < data.length; i++) {
    const byte = data[i]!;
    if (bellEnds && byte === BEL) return { payloadEnd: i, end: i + 1 };
    if (byte === ESC) {
      if (i + 1 >= data.length) return undefined;
      // ESC \ is the terminator; any other ESC cancels the string (and starts a new sequence).
      return data[i + 1] === 0x5c ? { payloadEnd: i, end: i + 2 } : { payloadEnd: i, end: i };
    }
    if (byte === 0x18 || byte === 0x1a) return { payloadEnd: i, end: i + 1 }; // CAN, SUB abort it
  }
  return undefined;
}

/** The replay without the queries in it; returns `data` itself when it holds none. */
export function withoutTerminalQueries(data: Buffer): Buffer {
  /** Ranges to cut, each with the bytes that stay in its place (controls a terminal runs even inside a sequence). */
  const cuts: Array<{ start: number; end: number; keep?: number[] }> = [];
  let i = 0;
  while (i < data.length) {
    const byte = data[i]!;
    if (byte === ENQ) {
      cuts.push({ start: i, end: i + 1 });
      i++;
      continue;
    }
    if (byte !== ESC || i + 1 >= data.length) {
      i++;
      continue;
    }
    const kind = data[i + 1]!;
    if (kind === 0x5b /* [ */) {
      const end = csiEnd(data, i + 2);
      if (end.kind === 'unfinished') break; // its end arrives live: kept
      if (end.kind === 'escaped') {
        // A terminal drops a sequence cut short by ESC; so can the replay (so a cut cannot join two halves into a query).
        cuts.push({ start: i, end: end.at, keep: end.controls });
        i = end.at;
      } else if (end.kind === 'cancelled') {
        i = end.at;
      } else {
        if (isCsiQuery(end.params, end.intermediates, end.final)) cuts.push({ start: i, end: end.at, keep: end.controls });
        i = end.at;
      }
      continue;
    }
    if (kind === 0x5d /* ] */ || kind === 0x50 /* P */) {
      const end = stringEnd(data, i + 2, kind === 0x5d);
      if (!end) break;
      const payload = data.toString('latin1', i + 2, end.payloadEnd);
      if (kind === 0x5d ? isOscQuery(payload) : isDcsQuery(payload)) cuts.push({ start: i, end: end.end });
      i = Math.max(end.end, i + 2);
      continue;
    }
    if (kind === 0x5a /* Z: DECID */) cuts.push({ start: i, end: i + 2 });
    // ESC ESC: a terminal drops the first (the second starts afresh), so the replay can too: kept, it could
    // join with what follows a removed query into a new one.
    if (kind === ESC) cuts.push({ start: i, end: i + 1 });
    i += kind === ESC ? 1 : 2;
  }
  if (cuts.length === 0) return data;
  const kept: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    if (cut.start > from) kept.push(data.subarray(from, cut.start));
    if (cut.keep?.length) kept.push(Buffer.from(cut.keep));
    from = cut.end;
  }
  if (from < data.length) kept.push(data.subarray(from));
  return Buffer.concat(kept);
}

type CsiEnd =
  | { kind: 'complete'; at: number; params: string; intermediates: string; final: string; controls: number[] }
  | { kind: 'escaped'; at: number; controls: number[] }
  | { kind: 'cancelled'; at: number }
  | { kind: 'unfinished' };

/**
 * Reads a CSI sequence from its first parameter byte the way a VT500-style parser does: C0
 * controls inside it are run and the sequence goes on, CAN and SUB cancel it, ESC starts a new one.
 */
function csiEnd(data: Buffer, from: number): CsiEnd {
  let params = '';
  let intermediates = '';
  const controls: number[] = [];
  for (let j = from; j < data.length; j++) {
    const byte = data[j]!;
    if (byte === ESC) return { kind: 'escaped', at: j, controls };
    if (byte === 0x18 || byte === 0x1a) return { kind: 'cancelled', at: j };
    if (byte < 0x20 || byte === 0x7f) {
      if (byte !== ENQ) controls.push(byte); // ENQ is run even here, and answered: never kept
    } else if (byte <= 0x2f) {
      intermediates += String.fromCharCode(byte);
    } else if (byte <= 0x3f) {
      // A parameter byte after an intermediate makes the sequence invalid: ignored up to its final byte.
      params += intermediates === '' ? String.fromCharCode(byte) : '\0';
    } else {
      return { kind: 'complete', at: j + 1, params, intermediates, final: byte <= 0x7e ? String.fromCharCode(byte) : '', controls };
    }
  }
  return { kind: 'unfinished' };
}

/**
 * The last `lines` lines of a replay (the line being written counts as one): what `--replay N`
 * asks for. Undefined: all of it. A line ends at LF; a CR LF pair stays whole.
 */
export function lastLines(data: Buffer, lines: number | undefined): Buffer {
  if (lines === undefined) return data;
  if (lines <= 0 || data.length === 0) return data.subarray(0, 0);
  // A trailing LF closes the last line rather than opening an empty one.
  let end = data[data.length - 1] === 0x0a ? data.length - 1 : data.length;
  for (let seen = 0; end > 0; ) {
    const newline = data.lastIndexOf(0x0a, end - 1);
    if (newline < 0) return data;
    if (++seen === lines) return data.subarray(newline + 1);
    end = newline;
  }
  return data;
}
