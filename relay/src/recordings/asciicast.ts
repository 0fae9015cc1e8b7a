/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then one
 * `[time, code, data]` line per event — `o` output, `i` input, `r` resize (`"80x24"`), `m` marker.
 * Times are seconds since the start, monotonic (never smaller than the one before, whatever the
 * clock does), with microsecond precision. Output is decoded as a stream, so a UTF-8 character
 * split across reads is written whole, and bytes that are not UTF-8 become U+FFFD: the text is
 * always valid. (The exact bytes go beside it, in the recording's raw segment.)
 */

export interface AsciicastHeader {
  width: number;
  height: number;
  /** Unix seconds when the recording started. */
  timestamp: number;
  title: string;
  env?: Record<string, string>;
}

export class AsciicastEncoder {
  private readonly output = new TextDecoder('utf-8', { fatal: false });
  private readonly input = new TextDecoder('utf-8', { fatal: false });
  private last = 0;

  /** `start`: the monotonic clock (performance.now(), ms) at the recording's start. */
  constructor(private readonly start: number) {}

  static header(header: AsciicastHeader): string {
    return `${JSON.stringify({ version: 2, ...header })}\n`;
  }

  private line(now: number, code: string, data: string): string {
    const seconds = Math.max(this.last, Math.round(((now - this.start) / 1000) * 1e6) / 1e6);
    this.last = seconds;
    return `${JSON.stringify([seconds, code, data])}\n`;
  }

  /** An output event, or '' while the bytes are only the start of a character. */
  out(now: number, chunk: Uint8Array): string {
    const text = this.output.decode(chunk, { stream: true });
    return text ? this.line(now, 'o', text) : '';
  }

  in(now: number, chunk: Uint8Array): string {
    const text = this.input.decode(chunk, { stream: true });
    return text ? this.line(now, 'i', text) : '';
  }

  resize(now: number, columns: number, rows: number): string {
    return this.line(now, 'r', `${columns}x${rows}`);
  }

  marker(now: number, label: string): string {
    return this.line(now, 'm', label);
  }

  /** What is left of a character cut short at the end (as U+FFFD). */
  end(now: number): string {
    const text = this.output.decode();
    return text ? this.line(now, 'o', text) : '';
  }
}
