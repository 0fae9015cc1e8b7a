/** The part of noVNC's RFB class the renderer uses (noVNC ships no types). */
declare module '@novnc/novnc' {
  export default class RFB extends EventTarget {
    constructor(target: HTMLElement, urlOrChannel: string | WebSocket, options?: Record<string, unknown>);
    scaleViewport: boolean;
    viewOnly: boolean;
    resizeSession: boolean;
    background: string;
    toBlob(callback: (blob: Blob | null) => void, type?: string, quality?: number): void;
    disconnect(): void;
    sendCtrlAltDel(): void;
    sendKey(keysym: number, code: string | null, down?: boolean): void;
    focus(): void;
    addEventListener(type: string, listener: (event: CustomEvent<{ name: string }>) => void): void;
  }
}
