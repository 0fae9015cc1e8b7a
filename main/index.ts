/**
 * Electron main process: the composition root and the thin shell that wires the plain-Node
 * services (main/services) to a hardened window, IPC and MessagePorts.
 */
import { join } from 'node:path';
import { app, BrowserWindow, ipcMain, MessageChannelMain, session, type IpcMainEvent, type IpcMainInvokeEvent } from 'electron';
import { IPC, STREAM_WINDOW_BYTES, type StreamMessage } from '../preload/contract.js';
import { dispatch } from './services/api-dispatch.js';
import { appRoot, startDesktop } from './services/desktop-app.js';

const root = appRoot();
const rendererPage = join(root, 'renderer', 'dist', 'index.html');

app.whenReady().then(async () => {
  // Deny every permission (camera, notifications, clipboard-read prompts…) by default.
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);

  const desktop = await startDesktop({
    dataDir: app.getPath('userData'),
    node: { command: process.execPath, env: { ELECTRON_RUN_AS_NODE: '1' } },
    log: (line) => console.error(line),
  });

  const window = new BrowserWindow({
    width: 1400,
    height: 900,
    title: 'Lifeline',
    webPreferences: {
      preload: join(root, 'dist-desktop', 'preload', 'index.js'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  });
  window.webContents.on('will-navigate', (event) => event.preventDefault());
  window.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  await window.loadFile(rendererPage);

  /** Only our own window's top frame, showing our own page, may call main. */
  const trusted = (event: IpcMainEvent | IpcMainInvokeEvent): boolean =>
    event.sender === window.webContents && event.senderFrame?.parent === null && event.senderFrame.url.startsWith('file://') && decodeURI(new URL(event.senderFrame.url).pathname) === rendererPage;

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
    // Credit-based flow: stop reading the SSH channel while the renderer has a window's worth unacknowledged.
    let unacknowledged = 0;
    const onData = (chunk: Buffer): void => {
      port1.postMessage({ type: 'data', data: new Uint8Array(chunk) } satisfies StreamMessage);
      unacknowledged += chunk.length;
      if (unacknowledged > STREAM_WINDOW_BYTES) stream.pause();
    };
    stream.on('data', onData);
    stream.once('close', () => port1.postMessage({ type: 'close', reason: 'console closed' } satisfies StreamMessage));
    port1.on('message', ({ data }: { data: StreamMessage }) => {
      if (data?.type === 'ack' && Number.isInteger(data.bytes) && data.bytes > 0) {
        unacknowledged = Math.max(0, unacknowledged - data.bytes);
        if (unacknowledged <= STREAM_WINDOW_BYTES) stream.resume();
      } else if (data?.type === 'data' && data.data instanceof Uint8Array) {
        stream.write(Buffer.from(data.data));
      } else if (data?.type === 'close') {
        stream.off('data', onData);
        port1.close();
      }
    });
    port1.start();
    event.sender.postMessage(IPC.stream, { streamId }, [port2]);
  });

  let quitting = false;
  app.on('before-quit', (event) => {
    if (quitting) return;
    quitting = true;
    event.preventDefault();
    // Stop the embedded relay and the lab VMs before leaving.
    void desktop.close().finally(() => app.exit(0));
  });
  app.on('window-all-closed', () => app.quit());
});
