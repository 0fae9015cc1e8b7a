import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DesktopService } from './desktop-service.js';
import { EmbeddedRelay, newAdminToken } from './embedded-relay.js';
import { OsKeychain, tokenAccount, type Keychain } from './keychain.js';
import { SettingsFile } from './settings.js';

export interface DesktopAppOptions {
  /** userData: settings, the embedded relay's data and lab VMs. */
  dataDir: string;
  relayConfig?: string;
  keychain?: Keychain;
  /** Run the embedded relay (default true). */
  embedded?: boolean;
  node?: { command: string; env: Record<string, string> };
  log: (line: string) => void;
}

/** The folder holding `renderer/index.html`, wherever this file was built to. */
export function appRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'renderer', 'index.html'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the app folder (renderer/index.html)');
    dir = parent;
  }
  return dir;
}

/**
 * Composition root of the main-process services, shared by the Electron shell and browser
 * mode: keychain, settings, the desktop service, and the embedded relay started in the
 * background (its progress goes to the UI as `embeddedStatus` events).
 */
export async function startDesktop(options: DesktopAppOptions): Promise<{ service: DesktopService; ready: Promise<void>; close: () => Promise<void> }> {
  const keychain = options.keychain ?? new OsKeychain();
  const settings = new SettingsFile(join(options.dataDir, 'settings.json'));
  const service = new DesktopService(keychain, settings);
  let embedded: EmbeddedRelay | undefined;

  const ready = (async () => {
    if (options.embedded === false) return;
    const known = settings.get().relays.find((r) => r.embedded);
    const adminToken = (known && (await keychain.get(tokenAccount(known.id)))) ?? newAdminToken();
    embedded = new EmbeddedRelay({
      dir: join(options.dataDir, 'embedded'),
      relayConfig: options.relayConfig,
      adminToken,
      node: options.node,
      onStatus: (status) => {
        service.setEmbeddedStatus(status);
        options.log(`embedded relay: ${status.message}`);
      },
    });
    try {
      const url = await embedded.start();
      if (url) await service.registerRelay({ name: 'This computer', url, token: adminToken, embedded: true });
    } catch (error) {
      service.setEmbeddedStatus({ state: 'failed', message: `The embedded relay failed: ${(error as Error).message}` });
    }
  })();

  return {
    service,
    ready,
    close: async () => {
      await ready.catch(() => undefined);
      await service.close();
      await embedded?.stop();
    },
  };
}
