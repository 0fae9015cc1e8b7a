import { button, element } from './dom.js';
import { icon } from './icons.js';

/**
 * Messages for the user, bottom right: errors stay until dismissed (they say what to do), progress
 * and confirmations fade by themselves. One region, `.notice`, announced to screen readers.
 */
export class Notices {
  readonly element = element('div', { class: 'notice', 'aria-live': 'polite' });
  private progress: HTMLElement | undefined;

  /** An error: stays until dismissed or replaced by the same text. */
  error(text: string): void {
    this.clearProgress();
    for (const existing of this.element.querySelectorAll<HTMLElement>('.message.error')) if (existing.dataset.text === text) existing.remove();
    this.add(text, 'error', 0);
  }

  /** Work in progress ("Opening…"): replaced by the next message. */
  busy(text: string): void {
    this.clearProgress();
    this.progress = this.add(text, 'progress', 0);
  }

  /** A confirmation that fades after a few seconds. */
  info(text: string): void {
    this.clearProgress();
    this.add(text, 'info', 6000);
  }

  clearProgress(): void {
    this.progress?.remove();
    this.progress = undefined;
  }

  private add(text: string, kind: 'error' | 'progress' | 'info', ttlMs: number): HTMLElement {
    const message = element('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-text': text });
    if (kind === 'error') message.append(icon('warning'));
    message.append(element('span', { class: 'text' }, text));
    if (kind !== 'progress') message.append(button('Dismiss', () => message.remove(), { icon: 'close', iconOnly: true, variant: 'ghost' }));
    this.element.append(message);
    // At most five at a time: the oldest go first.
    while (this.element.children.length > 5) this.element.firstElementChild?.remove();
    if (ttlMs > 0) setTimeout(() => message.remove(), ttlMs);
    return message;
  }
}
