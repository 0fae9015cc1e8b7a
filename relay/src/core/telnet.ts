/**
 * The slice of telnet (RFC 854) a QEMU socket chardev speaks with `telnet=on`: option
 * negotiation to strip from its output, 0xFF doubled in input, and BREAK. Nothing is negotiated
 * back: QEMU's character mode needs no answer. A chunk without 0xFF (nearly all of them) passes
 * through untouched, found with one indexOf.
 *
 * QEMU un-doubles 0xFF in what it reads, but does not double it in what the guest writes: after its
 * greeting (IAC WILL ECHO, WILL SGA, WILL/DO BINARY) the output is the guest's bytes as they are
 * (QEMU's own chardev log shows a guest's `printf '\377\376:'` as those three bytes, which a full
 * telnet decoder took for IAC DONT ':' and dropped). So `qemu` mode strips commands only until
 * the first data byte, then passes everything.
 */
export const IAC = 0xff;
const SE = 240;
const SB = 250;
const WILL = 251;
const DONT = 254;
export const BREAK = 243;

/** `IAC BREAK`: what the relay sends for an SSH `break` request. */
export const TELNET_BREAK = Buffer.from([IAC, BREAK]);

const enum State {
  Data,
  Iac,
  Option,
  Sub,
  SubIac,
  /** QEMU's greeting is over: the rest of the stream is data, 0xFF included. */
  Raw,
}

/** Removes telnet commands from a byte stream, keeping state across chunks. */
export class TelnetDecoder {
  private state = State.Data;

  /** `qemu`: commands only before the first data byte (QEMU never escapes its output); `rfc854`: everywhere, 0xFF 0xFF as one 0xFF. */
  constructor(private readonly mode: 'qemu' | 'rfc854' = 'rfc854') {}

  decode(chunk: Buffer): Buffer {
    if (this.state === State.Raw) return chunk;
    if (this.state === State.Data && chunk.indexOf(IAC) === -1) {
      if (this.mode === 'qemu' && chunk.length > 0) this.state = State.Raw;
      return chunk;
    }
    const out = Buffer.allocUnsafe(chunk.length);
    let length = 0;
    let index = 0;
    while (index < chunk.length) {
      if (this.state === State.Data) {
        // Copy the run up to the next IAC in one go.
        const next = chunk.indexOf(IAC, index);
        const end = next === -1 ? chunk.length : next;
        length += chunk.copy(out, length, index, end);
        if (this.mode === 'qemu' && end > index) {
          // The first data byte: from here on everything is data.
          length += chunk.copy(out, length, end);
          this.state = State.Raw;
          break;
        }
        index = end;
        if (next === -1) break;
        this.state = State.Iac;
        index++;
        continue;
      }
      const byte = chunk[index++]!;
      switch (this.state) {
        case State.Iac:
          if (byte === IAC) {
            out[length++] = IAC; // an escaped 0xFF data byte
            this.state = State.Data;
          } else if (byte >= WILL && byte <= DONT) this.state = State.Option;
          else if (byte === SB) this.state = State.Sub;
          else this.state = State.Data; // a two-byte command (NOP, GA, …)
          break;
        case State.Option:
          this.state = State.Data; // the option byte of WILL/WONT/DO/DONT
          break;
        case State.Sub:
          if (byte === IAC) this.state = State.SubIac;
          break;
        case State.SubIac:
          this.state = byte === SE ? State.Data : State.Sub;
          break;
      }
    }
    return out.subarray(0, length);
  }
}

/** Doubles every 0xFF, so input bytes are data, never commands. */
export function escapeIac(chunk: Buffer): Buffer {
  let next = chunk.indexOf(IAC);
  if (next === -1) return chunk;
  const parts: Buffer[] = [];
  let start = 0;
  while (next !== -1) {
    parts.push(chunk.subarray(start, next + 1), Buffer.from([IAC]));
    start = next + 1;
    next = chunk.indexOf(IAC, start);
  }
  parts.push(chunk.subarray(start));
  return Buffer.concat(parts);
}
