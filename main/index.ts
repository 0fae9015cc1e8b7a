/**
 * Electron main process: the composition root and the thin shell that wires the plain-Node
 * services (main/services) to a hardened window, IPC and MessagePorts.
 */
import { onShutdown } from '@lifeline/relay/client';
import { join } from 'node:path';
import { app, BrowserWindow, ipcMain, Menu, MessageChannelMain, nativeTheme, session, type IpcMainEvent, type IpcMainInvokeEvent, type MenuItemConstructorOptions, type MessagePortMain } from 'electron';
import { IPC, type StreamMessage } from '../preload/contract.js';
import { dispatch } from './services/api-dispatch.js';
import { applicationMenuTemplate } from './services/app-menu.js';
import { desktopDataDir } from './services/data-dir.js';
import { appRoot, startDesktop } from './services/desktop-app.js';
import { isRendererPage } from './services/renderer-page.js';
import { bridgeStream, type MessageEndpoint } from './services/stream-bridge.js';

const root = appRoot();
// The data folder browser mode and the `lifeline` CLI use too (the relay list is shared), set before Electron reads it.
app.setPath('userData', desktopDataDir());
const rendererPage = join(root, 'renderer', 'dist', 'index.html');
/** The preload, bundled by esbuild into one CommonJS script: sandboxed windows load nothing else. */
const preloadScript = join(root, 'dist-desktop', 'preload', 'preload.cjs');

/** The stream protocol over Electron's MessagePortMain. */
function portEndpoint(port: MessagePortMain): MessageEndpoint {
  return {
    send: (message: StreamMessage) => port.postMessage(message),
    onMessage: (listener) => void port.on('message', ({ data }) => listener(data)),
    onClose: (listener) => void port.on('close', listener),
    close: () => port.close(),
  };
}

// Two instances would start two relays on one store and one set of lab VMs: the second hands over to the first.
if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  void main().catch((error: unknown) => {
    console.error(`Lifeline failed to start: ${(error as Error).stack ?? String(error)}`);
    app.exit(1);
  });
}

async function main(): Promise<void> {
  await app.whenReady();
  Menu.setApplicationMenu(Menu.buildFromTemplate(applicationMenuTemplate(process.platform) as MenuItemConstructorOptions[]));
  // Deny every permission (camera, notifications, clipboard-read prompts…) by default.
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);

  const desktop = await startDesktop({
    dataDir: desktopDataDir(),
    node: { command: process.execPath, env: { ELECTRON_RUN_AS_NODE: '1' } },
    log: (line) => console.error(line),
  });

  // However the app ends (Quit, a signal, a terminal closed, a bug), the relay and the lab VMs stop with it.
  const shutdown = onShutdown({ graceMs: 15_000, log: (message) => console.error(`Lifeline: ${message}`) }, async ({ error }) => {
    if (error !== undefined) console.error(`Lifeline hit an internal error and is shutting down: ${String((error as Error)?.stack ?? error)}`);
    await desktop.close();
  });
  let quitting = false;
  app.on('before-quit', (event) => {
    if (quitting) return;
    quitting = true;
    event.preventDefault();
    shutdown.close();
  });
  app.on('window-all-closed', () => app.quit());

  const window = new BrowserWindow({
    width: 1400,
    height: 900,
    title: 'Lifeline',
    // The page's own background, so the window does not flash white before a dark theme paints.
    backgroundColor: nativeTheme.shouldUseDarkColors ? '#16181d' : '#f6f7f9',
    webPreferences: {
      preload: preloadScript,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  });
  app.on('second-instance', () => {
    if (window.isMinimized()) window.restore();
    window.focus();
  });

  /** Only our own window's top frame, showing our own page, may call main. */
  const trusted = (event: IpcMainEvent | IpcMainInvokeEvent): boolean =>
    event.sender === window.webContents && event.senderFrame?.parent === null && isRendererPage(event.senderFrame.url, rendererPage);

  // Handlers first: the renderer calls main as soon as its page runs, during loadFile.
  ipcMain.handle(IPC.call, (event, method: unknown, args: unknown) => {
    if (!trusted(event)) throw new Error('refused: not the Lifeline window');
    return dispatch(desktop.service, method, args);
  });
  desktop.service.events.on('event', (event) => {
    if (!window.isDestroyed()) window.webContents.send(IPC.event, event);
  });
  ipcMain.on(IPC.openStream, (event, streamId: unknown) => {
    if (!trusted(event) || typeof streamId !== 'string') return;
    const stream = desktop.service.stream(streamId);
    const { port1, port2 } = new MessageChannelMain();
    if (!stream) {
      event.sender.postMessage(IPC.stream, { streamId, error: 'This console is closed.' }, [port2]);
      return;
    }
    bridgeStream(stream, portEndpoint(port1));
    port1.start();
    event.sender.postMessage(IPC.stream, { streamId }, [port2]);
  });

  window.webContents.on('will-navigate', (event) => event.preventDefault());
  window.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  // A page that goes away (a reload from DevTools, a crashed renderer) leaves no tabs behind in main.
  let loaded = false;
  window.webContents.on('did-start-loading', () => {
    if (loaded) void desktop.service.close();
  });
  window.webContents.on('render-process-gone', () => void desktop.service.close());
  await window.loadFile(rendererPage);
  loaded = true;
}
