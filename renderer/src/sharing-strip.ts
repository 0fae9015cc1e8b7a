import type { ConsoleControl, DesktopBridge, TabView } from '../../preload/contract.js';
import { button, element } from './dom.js';
import { icon } from './icons.js';

/** A relay notice for a tab, with what it means (DesktopEvent consoleNotice). */
export interface SharingNotice {
  text: string;
  role?: 'controller' | 'observer';
  recorded?: boolean;
  controlRequested?: boolean;
}

/**
 * A console tab's share of a shared console (docs/sharing.md): whether it observes (labelled, read
 * only) or controls, whether the relay records the session, the relay's last notice (joins, leaves,
 * control changes), and the control buttons: an observer asks for control, a controller answers a
 * request or hands control over. The relay enforces all of it; this only shows and asks.
 */
export class SharingStrip {
  readonly root = element('div', { class: 'sharing-strip', role: 'group', 'aria-label': 'Sharing' });
  private readonly roleBadge = element('span', { class: 'badge role' });
  private readonly recordedBadge = element('span', { class: 'badge danger recorded', title: 'The relay records this session (docs/recordings.md)' }, icon('record', 12), 'Recorded');
  private readonly noticeText = element('span', { class: 'sharing-notice', role: 'status', 'aria-live': 'polite' });
  private readonly ask = button('Ask for control', () => this.control('request'), { icon: 'hand', title: 'Ask whoever controls this console to hand it over (no answer in 30 s is no)' });
  private readonly approve = button('Hand over control', () => this.control('approve'), { icon: 'hand', variant: 'primary', title: 'Give control to the one asking; you keep watching' });
  private readonly refuse = button('Refuse', () => this.control('deny'), { title: 'Keep control' });
  private role: 'controller' | 'observer';
  private requested = false;

  constructor(
    private readonly bridge: DesktopBridge,
    private readonly tab: TabView,
    private readonly report: (error: Error) => void,
  ) {
    this.role = tab.role ?? 'controller';
    this.recordedBadge.hidden = true;
    // A tab alone on its console shows nothing of this until the relay says something.
    this.root.hidden = this.role !== 'observer';
    this.root.append(this.roleBadge, this.recordedBadge, this.noticeText, this.ask, this.approve, this.refuse);
    this.render();
  }

  /** A relay notice for this tab (ConsoleNoticeEvent). */
  notice(text: string, meaning: Omit<SharingNotice, 'text'>): void {
    this.root.hidden = false;
    this.noticeText.textContent = text;
    this.noticeText.title = text;
    if (meaning.role) this.role = meaning.role;
    if (meaning.recorded) this.recordedBadge.hidden = false;
    if (meaning.controlRequested !== undefined) this.requested = meaning.controlRequested;
    this.render();
  }

  get observing(): boolean {
    return this.role === 'observer';
  }

  private render(): void {
    const observing = this.role === 'observer';
    this.roleBadge.textContent = observing ? 'Observing · read-only' : 'In control';
    this.roleBadge.className = `badge role ${observing ? 'observing' : 'ok'}`;
    this.root.dataset.role = this.role;
    this.ask.hidden = !observing || this.tab.kind !== 'serial';
    this.approve.hidden = observing || !this.requested;
    this.refuse.hidden = observing || !this.requested;
  }

  private async control(action: ConsoleControl): Promise<void> {
    try {
      const answer = await this.bridge.api.consoleControl(this.tab.id, action);
      if (answer) this.noticeText.textContent = answer;
    } catch (error) {
      this.report(error as Error);
    }
  }
}

/** Notices for tabs the renderer has not got yet: the relay speaks as a session starts, before openConsole answers with the tab. */
export class EarlyNotices {
  private readonly pending = new Map<string, SharingNotice[]>();

  keep(tabId: string, notice: SharingNotice): void {
    const list = this.pending.get(tabId) ?? [];
    if (list.length < 20) list.push(notice);
    this.pending.set(tabId, list);
    setTimeout(() => this.pending.delete(tabId), 30_000);
  }

  take(tabId: string): SharingNotice[] {
    const list = this.pending.get(tabId) ?? [];
    this.pending.delete(tabId);
    return list;
  }
}
