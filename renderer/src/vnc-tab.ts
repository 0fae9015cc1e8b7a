import RFB from '@novnc/novnc';
import type { DesktopBridge, TabView } from '../../preload/contract.js';
import { button, checkbox, element } from './dom.js';
import { icon } from './icons.js';

/** X11 keysyms for the key combinations the toolbar sends. */
const KEY = {
  Control: 0xffe3, Alt: 0xffe9, Super: 0xffeb, Shift: 0xffe1, Tab: 0xff09, Escape: 0xff1b, BackSpace: 0xff08, Delete: 0xffff, Print: 0xff61, SysReq: 0xff15,
  F1: 0xffbe, F2: 0xffbf, F3: 0xffc0, F4: 0xffc1, F5: 0xffc2, F6: 0xffc3, F7: 0xffc4,
} as const;
type KeyName = keyof typeof KEY;

/** The usual combinations a console needs that the local desktop would otherwise take for itself. */
const COMBINATIONS: Array<{ label: string; keys: KeyName[] }> = [
  { label: 'Ctrl+Alt+F1', keys: ['Control', 'Alt', 'F1'] },
  { label: 'Ctrl+Alt+F2', keys: ['Control', 'Alt', 'F2'] },
  { label: 'Ctrl+Alt+F3', keys: ['Control', 'Alt', 'F3'] },
  { label: 'Ctrl+Alt+F7', keys: ['Control', 'Alt', 'F7'] },
  { label: 'Ctrl+Alt+Backspace', keys: ['Control', 'Alt', 'BackSpace'] },
  { label: 'Alt+Tab', keys: ['Alt', 'Tab'] },
  { label: 'Alt+F4', keys: ['Alt', 'F4'] },
  { label: 'Ctrl+Esc', keys: ['Control', 'Escape'] },
  { label: 'Windows key', keys: ['Super'] },
  { label: 'Print Screen', keys: ['Print'] },
  { label: 'Alt+SysRq', keys: ['Alt', 'SysReq'] },
];

/** A VNC tab: noVNC on the tab's byte stream (the SSH `vnc:5900` channel, bridged by main). */
export class VncTab {
  /** The tab's content (toolbar, banner, screen: the workspace fills it); its data-state says connected or not. */
  readonly root = element('div', { class: 'vnc-tab' });
  readonly screen = element('div', { class: 'vnc-screen' });
  readonly tools: HTMLElement[];
  private rfb: RFB | undefined;
  private readonly status = element('span', { role: 'status', class: 'vnc-status' }, 'Connecting…');
  private scale = true;
  private viewOnly = false;
  private vm = '';

  constructor(private readonly bridge: DesktopBridge) {
    const keysMenu = element('details', { class: 'menu' },
      element('summary', { 'aria-label': 'Send a key combination', title: 'Send a key combination' }, icon('keyboard'), element('span', { class: 'label' }, 'Keys')),
      element('div', { class: 'menu-items', role: 'group', 'aria-label': 'Key combinations' },
        ...COMBINATIONS.map(({ label, keys }) => button(`Send ${label}`, () => {
          this.sendCombination(keys);
          keysMenu.open = false;
        }))),
    );
    this.tools = [
      element('div', { class: 'group', role: 'group', 'aria-label': 'Keyboard' },
        button('Send Ctrl+Alt+Del', () => this.rfb?.sendCtrlAltDel(), { icon: 'power', title: 'Send Ctrl+Alt+Del' }),
        keysMenu,
        button('Paste clipboard as keystrokes', async () => this.typeText(await navigator.clipboard.readText()), { icon: 'typeText', iconOnly: true, title: 'Paste the clipboard as key presses (for prompts without a clipboard)' }),
      ),
      element('div', { class: 'group', role: 'group', 'aria-label': 'View' },
        checkbox('Scale to window', true, (on) => {
          this.scale = on;
          if (this.rfb) this.rfb.scaleViewport = on;
        }, { icon: 'scale', class: 'toggle' }),
        checkbox('View only', false, (on) => {
          this.viewOnly = on;
          if (this.rfb) this.rfb.viewOnly = on;
        }, { icon: 'viewOnly', class: 'toggle' }),
        button('Save screenshot', () => this.screenshot(), { icon: 'screenshot', iconOnly: true, title: 'Save a screenshot as PNG' }),
        button('Full screen', () => void this.root.requestFullscreen?.(), { icon: 'fullscreen', iconOnly: true, title: 'Full screen (Esc leaves it)' }),
      ),
      this.status,
    ];
  }

  private sendCombination(keys: KeyName[]): void {
    const rfb = this.rfb;
    if (!rfb) return;
    for (const key of keys) rfb.sendKey(KEY[key], null, true);
    for (const key of [...keys].reverse()) rfb.sendKey(KEY[key], null, false);
    rfb.focus();
  }

  /** Types text as key presses (for login prompts that have no clipboard). */
  private typeText(text: string): void {
    for (const char of text) {
      const code = char.codePointAt(0)!;
      const keysym = char === '\n' ? 0xff0d : code < 0x100 ? code : 0x01000000 + code;
      this.rfb?.sendKey(keysym, null);
    }
  }

  private screenshot(): void {
    this.rfb?.toBlob((blob: Blob | null) => {
      if (!blob) return;
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = `${this.vm}-screen-${new Date().toISOString().replace(/[:.]/g, '-')}.png`;
      link.click();
      URL.revokeObjectURL(link.href);
    }, 'image/png');
  }

  async connect(tab: TabView): Promise<void> {
    this.vm = tab.vm;
    this.rfb?.disconnect();
    this.status.textContent = 'Connecting…';
    const stream = await this.bridge.openStream(tab.streamId);
    const rfb = new RFB(this.screen, stream as unknown as WebSocket);
    this.rfb = rfb;
    rfb.scaleViewport = this.scale;
    rfb.resizeSession = false;
    // A watching tab sends no input (the relay would drop it anyway).
    rfb.viewOnly = this.viewOnly || tab.role === 'observer';
    rfb.background = 'transparent';
    let name = '';
    rfb.addEventListener('desktopname', (event: CustomEvent<{ name: string }>) => {
      name = event.detail.name;
    });
    rfb.addEventListener('connect', () => {
      this.status.textContent = `Connected to ${name || tab.vm}`;
      this.root.dataset.state = 'connected';
      rfb.focus();
    });
    rfb.addEventListener('disconnect', () => {
      this.status.textContent = 'Disconnected';
      this.root.dataset.state = 'disconnected';
    });
  }

  show(): void {
    requestAnimationFrame(() => this.rfb?.focus());
  }

  focus(): void {
    this.rfb?.focus();
  }

  setTheme(): void {}

  dispose(): void {
    this.rfb?.disconnect();
  }
}
