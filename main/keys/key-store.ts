import { keyAccount, type Keychain } from '../services/keychain.js';
import { describePrivateKey, generateKeyPair, type KeyPair } from '../services/ssh-keys.js';

/**
 * The app's console keys in the keychain: one ed25519 key per relay and VM (account
 * `key:<relayId>:<vm>`), made on first use, rotated so that the console never holds a key
 * nobody has.
 */
export class KeyStore {
  constructor(private readonly keychain: Keychain) {}

  /** The key this app holds for the VM's console, if any. */
  async own(relayId: string, vm: string): Promise<KeyPair | undefined> {
    const stored = await this.keychain.get(keyAccount(relayId, vm));
    return stored ? describePrivateKey(stored) : undefined;
  }

  /** The key for the VM's console: the one held, or a new one, kept first. */
  async keyFor(relayId: string, vm: string): Promise<KeyPair> {
    const own = await this.own(relayId, vm);
    if (own) return own;
    const fresh = generateKeyPair();
    await this.keychain.set(keyAccount(relayId, vm), fresh.privateKey);
    return fresh;
  }

  /**
   * A new key, stored in place of the old one first, then `apply` (re-key the console with it).
   * If `apply` fails, the old key goes back: at no point does the console hold a key nobody has.
   */
  async rotate<T>(relayId: string, vm: string, apply: (fresh: KeyPair) => Promise<T>): Promise<{ fresh: KeyPair; result: T }> {
    const fresh = generateKeyPair();
    const account = keyAccount(relayId, vm);
    const previous = await this.keychain.get(account);
    await this.keychain.set(account, fresh.privateKey);
    try {
      return { fresh, result: await apply(fresh) };
    } catch (error) {
      await (previous === undefined ? this.keychain.delete(account) : this.keychain.set(account, previous));
      throw error;
    }
  }

  async delete(relayId: string, vm: string): Promise<void> {
    await this.keychain.delete(keyAccount(relayId, vm));
  }

  /** Forgets every key of a relay (it is being removed). */
  async deleteRelay(relayId: string): Promise<void> {
    for (const account of await this.keychain.accounts()) if (account.startsWith(`key:${relayId}:`)) await this.keychain.delete(account);
  }
}
