/**
 * What the relay's out-of-band lines on a console's SSH stderr (`[lifeline] …`, docs/sharing.md)
 * say about the tab they arrive on: its role now, whether it is recorded, and whether someone is
 * asking its controller for control. Pure: the lines are the relay's documented wording.
 */
export interface NoticeMeaning {
  text: string;
  role?: 'controller' | 'observer';
  recorded?: boolean;
  /** True: someone asks this tab (the controller) for control; false: that request is over. */
  controlRequested?: boolean;
}

const PREFIX = '[lifeline] ';

export function noticeMeaning(line: string): NoticeMeaning | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith(PREFIX)) return undefined;
  const text = trimmed.slice(PREFIX.length);
  const meaning: NoticeMeaning = { text };
  if (/^you have control of /.test(text)) meaning.role = 'controller';
  else if (/^observing [^:]+: read-only/.test(text) || /; you are observing$/.test(text)) meaning.role = 'observer';
  if (/^this session is recorded/.test(text)) meaning.recorded = true;
  if (/ asks for control: /.test(text)) meaning.controlRequested = true;
  else if (/^the request of .* timed out$/.test(text) || /has control now \(/.test(text) || meaning.role) meaning.controlRequested = false;
  return meaning;
}

/** Splits stderr chunks into whole lines (a line may arrive in pieces). */
export class LineSplitter {
  private partial = '';

  push(chunk: string): string[] {
    const text = this.partial + chunk;
    const lines = text.split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    if (this.partial.length > 4096) this.partial = this.partial.slice(-4096);
    return lines.filter((line) => line.length > 0);
  }
}
