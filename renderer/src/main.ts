import type { PreloadApi } from '../../preload/contract.js';
import { App } from './app.js';
import { connectBrowserBridge } from './browser-bridge.js';
import { electronBridge } from './electron-bridge.js';

declare global {
  interface Window {
    /** Set by the Electron preload; absent in browser mode. */
    lifelinePreload?: PreloadApi;
  }
}

const root = document.getElementById('app')!;
try {
  const bridge = window.lifelinePreload ? electronBridge(window.lifelinePreload) : await connectBrowserBridge();
  await new App(root, bridge).start();
} catch (error) {
  root.textContent = `Lifeline cannot start: ${(error as Error).message}`;
}
