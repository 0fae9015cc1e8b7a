import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DesktopService } from './desktop-service.js';
import { adminTokenOfConfig, EmbeddedRelay, newAdminToken } from './embedded-relay.js';
import { acquireInstanceLock } from './instance-lock.js';
import { FallbackKeychain, OsKeychain, tokenAccount, type Keychain } from './keychain.js';
import { embeddedFiles, reapEmbedded, startWatchdog, stopRecorded, waitForRecorded, type NodeCommand } from './leftovers.js';
import { SettingsFile } from './settings.js';
import { generateKeyPair } from './ssh-keys.js';
import { createMainLogger } from './main-log.js';

export interface DesktopAppOptions {
  /** userData: settings, the embedded relay's data and lab VMs. */
  dataDir: string;
  relayConfig?: string;
  keychain?: Keychain;
  /** Run the embedded relay (default true). */
  embedded?: boolean;
  node?: NodeCommand;
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
  // One app per data folder: a second one would start a second relay on the same store and VMs.
  const releaseLock = acquireInstanceLock(options.dataDir);
  // JSON records in <dataDir>/lifeline.log; their messages on stderr as before.
  const log = createMainLogger({ file: join(options.dataDir, 'lifeline.log'), echo: options.log });
  const settings = new SettingsFile(join(options.dataDir, 'settings.json'));
  // Without a usable OS keychain (a headless server, a locked one), secrets live in memory for this run.
  const keychain = new FallbackKeychain(options.keychain ?? new OsKeychain(), (status) => {
    log.warn({ keychain: status.mode }, `keychain: ${status.message}`);
    service.setKeychainStatus(status);
  });
  const service = new DesktopService(keychain, settings, Date.now, undefined, log);
  await keychain.probe(); // a failure reports itself through onStatus above
  let embedded: EmbeddedRelay | undefined;
  const node = options.node ?? { command: process.execPath, env: {} };
  const embeddedDir = join(options.dataDir, 'embedded');

  const ready = (async () => {
    if (options.embedded === false) return;
    try {
      // What a previous run could not stop (it was killed with -9) goes first: its watchdog may still be at it.
      const files = embeddedFiles(embeddedDir);
      if (!(await waitForRecorded(files.watchdog, 20_000))) await stopRecorded(files.watchdog, 1000);
      const leftovers = await reapEmbedded(embeddedDir, node);
      if (leftovers.length > 0) log.warn({ leftovers }, `stopped what the previous run left running: ${leftovers.join(', ')}`);
      startWatchdog(embeddedDir, node);
    } catch (error) {
      const message = `The embedded relay was not started: what the previous run left could not be stopped (${(error as Error).message}).`;
      log.error(message);
      service.setEmbeddedStatus({ state: 'failed', message });
      return;
    }
    const known = settings.get().relays.find((r) => r.embedded);
    const keptToken = known ? await keychain.get(tokenAccount(known.id)) : undefined;
    const adminToken = keptToken ?? newAdminToken();
    // Without an OS keychain the lab relay's host key lives in memory too: a new one each run, pinned afresh.
    const hostKey = keychain.status.mode === 'memory' && !options.relayConfig ? generateKeyPair() : undefined;
    embedded = new EmbeddedRelay({
      dir: embeddedDir,
      relayConfig: options.relayConfig,
      adminToken,
      hostKey: hostKey?.privateKey,
      node,
      onStatus: (status) => {
        service.setEmbeddedStatus(status);
        log.info({ embedded: status.state }, `embedded relay: ${status.message}`);
      },
    });
    try {
      const url = await embedded.start();
      if (!url) return;
      if (!options.relayConfig) {
        await service.registerRelay({ name: 'This computer', url, token: adminToken, embedded: true, ...(hostKey && { hostKeyGiven: hostKey.fingerprint }) });
        return;
      }
      // A relay of the user's keeps its admin token: use the one we kept, the one it wrote, or the environment's.
      const candidates = [keptToken, adminTokenOfConfig(options.relayConfig), process.env.LIFELINE_ADMIN_TOKEN];
      for (const token of new Set(candidates.filter((t): t is string => Boolean(t)))) {
        try {
          await service.registerRelay({ name: 'This computer', url, token, embedded: true });
          return;
        } catch {
          // Try the next one.
        }
      }
      throw new Error(`the relay runs at ${url}, but no admin token for it was found: none in the keychain, in its <dataDir>/admin.token or in LIFELINE_ADMIN_TOKEN. Add it as a relay with its token.`);
    } catch (error) {
      const message = `The embedded relay failed: ${(error as Error).message}`;
      log.error(message);
      service.setEmbeddedStatus({ state: 'failed', message });
    }
  })();

  return {
    service,
    ready,
    close: async () => {
      await ready.catch(() => undefined);
      try {
        await service.close();
        await embedded?.stop();
      } finally {
        log.flush();
        releaseLock();
      }
    },
  };
}
