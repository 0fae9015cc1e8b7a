import keytar from 'keytar';
import type { KeychainStatus } from '../../preload/contract.js';

export const KEYCHAIN_SERVICE = 'lifeline';

/** Secret storage: private keys (`key:<relayId>:<vm>`) and API tokens (`token:<relayId>`). */
export interface Keychain {
  get(account: string): Promise<string | undefined>;
  set(account: string, secret: string): Promise<void>;
  delete(account: string): Promise<boolean>;
  accounts(): Promise<string[]>;
}

export const keyAccount = (relayId: string, vm: string): string => `key:${relayId}:${vm}`;
export const tokenAccount = (relayId: string): string => `token:${relayId}`;

/** The OS keychain through keytar (Secret Service on Linux, Keychain on macOS, Credential Vault on Windows). */
export class OsKeychain implements Keychain {
  async get(account: string): Promise<string | undefined> {
    return (await keytar.getPassword(KEYCHAIN_SERVICE, account)) ?? undefined;
  }

  async set(account: string, secret: string): Promise<void> {
    await keytar.setPassword(KEYCHAIN_SERVICE, account, secret);
  }

  async delete(account: string): Promise<boolean> {
    return keytar.deletePassword(KEYCHAIN_SERVICE, account);
  }

  async accounts(): Promise<string[]> {
    return (await keytar.findCredentials(KEYCHAIN_SERVICE)).map((c) => c.account);
  }
}

/** Secrets in this process's memory only: gone when it ends, never on disk. */
export class MemoryKeychain implements Keychain {
  private readonly secrets = new Map<string, string>();

  async get(account: string): Promise<string | undefined> {
    return this.secrets.get(account);
  }

  async set(account: string, secret: string): Promise<void> {
    this.secrets.set(account, secret);
  }

  async delete(account: string): Promise<boolean> {
    return this.secrets.delete(account);
  }

  async accounts(): Promise<string[]> {
    return [...this.secrets.keys()];
  }
}

export const OS_KEYCHAIN_STATUS: KeychainStatus = { mode: 'os', message: 'Keys and API tokens are kept in the OS keychain.' };

/** What the user is told when secrets live in memory: the cause, and what it means for the next start. */
export function memoryKeychainStatus(cause: string): KeychainStatus {
  return {
    mode: 'memory',
    cause,
    message:
      `No OS keychain (${cause}). Keys and API tokens are held in memory for this run only and never written to disk: ` +
      'consoles get a new key at the next start, and remote relays need their API token entered again. ' +
      'To keep them, run Lifeline in a desktop session with a Secret Service (GNOME Keyring, KWallet).',
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s (locked, or waiting for a prompt nobody sees)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The OS keychain where it works; for the rest of the run, memory, from its first failure on
 * (no Secret Service or D-Bus session, a locked keychain that does not answer, any keychain error).
 * The app keeps working either way; `onStatus` tells the UI which one holds the secrets.
 */
export class FallbackKeychain implements Keychain {
  private readonly memory = new MemoryKeychain();
  private current: KeychainStatus = OS_KEYCHAIN_STATUS;

  constructor(
    private readonly os: Keychain,
    private readonly onStatus: (status: KeychainStatus) => void = () => undefined,
    private readonly timeoutMs = 5000,
  ) {}

  get status(): KeychainStatus {
    return this.current;
  }

  /** Asks the OS keychain once, so the UI knows from the start which store is in use. */
  async probe(): Promise<KeychainStatus> {
    await this.use((keychain) => keychain.accounts());
    return this.current;
  }

  private async use<T>(operation: (keychain: Keychain) => Promise<T>): Promise<T> {
    if (this.current.mode === 'os') {
      try {
        return await withTimeout(operation(this.os), this.timeoutMs, 'the OS keychain');
      } catch (error) {
        const cause = ((error as Error)?.message ?? String(error)).trim().replace(/\.$/, '') || 'the keychain failed';
        this.current = memoryKeychainStatus(cause);
        this.onStatus(this.current);
      }
    }
    return operation(this.memory);
  }

  get(account: string): Promise<string | undefined> {
    return this.use((keychain) => keychain.get(account));
  }

  set(account: string, secret: string): Promise<void> {
    return this.use((keychain) => keychain.set(account, secret));
  }

  delete(account: string): Promise<boolean> {
    return this.use((keychain) => keychain.delete(account));
  }

  accounts(): Promise<string[]> {
    return this.use((keychain) => keychain.accounts());
  }
}
