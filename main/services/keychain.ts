import keytar from 'keytar';

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
