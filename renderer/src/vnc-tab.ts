import RFB from '@novnc/novnc';
import type { DesktopBridge, TabView } from '../../preload/contract.js';
import { button, checkbox } from './dom.js';

/** A VNC tab: noVNC on the tab's byte stream (the SSH `vnc:5900` channel, bridged by main). */
export class VncTab {
  readonly element = document.createElement('div');
  private readonly screen = document.createElement('div');
  private rfb: RFB | undefined;
  private readonly status = document.createElement('span');
  private scale = true;
  private viewOnly = false;

  constructor(private readonly bridge: DesktopBridge) {
    this.element.className = 'vnc-tab';
    const toolbar = document.createElement('div');
    toolbar.className = 'toolbar';
    this.status.setAttribute('role', 'status');
    this.status.textContent = 'Connecting…';
    toolbar.append(
      this.status,
      button('Send Ctrl+Alt+Del', () => this.rfb?.sendCtrlAltDel()),
      button('Paste clipboard as keystrokes', async () => this.typeText(await navigator.clipboard.readText())),
      checkbox('Scale to window', true, (on) => {
        this.scale = on;
        if (this.rfb) this.rfb.scaleViewport = on;
      }),
      checkbox('View only', false, (on) => {
        this.viewOnly = on;
        if (this.rfb) this.rfb.viewOnly = on;
      }),
    );
    this.screen.className = 'vnc-screen';
    this.element.append(toolbar, this.screen);
  }

  /** Types text as key presses (for login prompts that have no clipboard). */
  private typeText(text: string): void {
    for (const char of text) {
      const code = char.codePointAt(0)!;
      const keysym = char === '\n' ? 0xff0d : code < 0x100 ? code : 0x01000000 + code;
      this.rfb?.sendKey(keysym, null);
    }
  }

  async connect(tab: TabView): Promise<void> {
    this.rfb?.disconnect();
    const stream = await this.bridge.openStream(tab.streamId);
    const rfb = new RFB(this.screen, stream as unknown as WebSocket);
    this.rfb = rfb;
    rfb.scaleViewport = this.scale;
    rfb.viewOnly = this.viewOnly;
    let name = '';
    rfb.addEventListener('desktopname', (event: CustomEvent<{ name: string }>) => {
      name = event.detail.name;
    });
    rfb.addEventListener('connect', () => {
      this.status.textContent = `Connected to ${name || tab.vm}`;
      this.element.dataset.state = 'connected';
      rfb.focus();
    });
    rfb.addEventListener('disconnect', () => {
      this.status.textContent = 'Disconnected';
      this.element.dataset.state = 'disconnected';
    });
  }

  show(): void {}

  dispose(): void {
    this.rfb?.disconnect();
  }
}
