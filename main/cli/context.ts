import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeychainStatus } from '../../preload/contract.js';
import { KeyStore } from '../keys/key-store.js';
import { RelayRegistry } from '../relays/relay-registry.js';
import { desktopDataDir } from '../services/data-dir.js';
import { memoryKeychainStatus, OS_KEYCHAIN_STATUS, OsKeychain, tokenAccount, type Keychain } from '../services/keychain.js';
import { RelayApi, RelayApiError } from '../services/relay-api.js';
import { TrustStore } from '../services/relay-tls.js';
import { SettingsFile, type RelayRecord } from '../services/settings.js';
import { CliError } from './errors.js';
import type { OutputFormat } from './output.js';

/** The options every command takes (docs/cli.md). */
export interface GlobalFlags {
  relay?: string;
  tokenFile?: string;
  output: OutputFormat;
  yes: boolean;
}

const KEYCHAIN_TIMEOUT_MS = 5000;

/**
 * The OS keychain as the desktop uses it (keytar, service `lifeline`), or none: without one (no
 * D-Bus session or Secret Service, a keychain that does not answer) reads find nothing and writes
 * keep nothing, so no secret is ever written anywhere else; `available` says which.
 */
export class CliKeychain implements Keychain {
  private os: Keychain | undefined;

  /** `tokenOverride`: the token given for this command (--token-file, LIFELINE_TOKEN), read in place of every relay's kept one. */
  constructor(private readonly tokenOverride: () => string | undefined = () => undefined) {}

  private probed: Promise<KeychainStatus> | undefined;
  status: KeychainStatus = OS_KEYCHAIN_STATUS;

  /** Asks the keychain once; after a failure it is not asked again in this command. */
  probe(): Promise<KeychainStatus> {
    this.probed ??= (async () => {
      try {
        const os = new OsKeychain();
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the OS keychain did not answer within ${KEYCHAIN_TIMEOUT_MS / 1000} s`)), KEYCHAIN_TIMEOUT_MS)));
        await Promise.race([os.accounts(), timeout]).finally(() => clearTimeout(timer));
        this.os = os;
      } catch (error) {
        this.status = memoryKeychainStatus(((error as Error).message ?? String(error)).trim().replace(/\.$/, ''));
      }
      return this.status;
    })();
    return this.probed;
  }

  async available(): Promise<boolean> {
    return (await this.probe()).mode === 'os';
  }

  /** Why there is no keychain, for messages. */
  get cause(): string {
    return this.status.mode === 'memory' ? (this.status.cause ?? 'unknown') : '';
  }

  async get(account: string): Promise<string | undefined> {
    const given = account.startsWith('token:') ? this.tokenOverride() : undefined;
    if (given) return given;
    await this.probe();
    return this.os?.get(account);
  }

  async set(account: string, secret: string): Promise<void> {
    await this.probe();
    await this.os?.set(account, secret);
  }

  async delete(account: string): Promise<boolean> {
    await this.probe();
    return (await this.os?.delete(account)) ?? false;
  }

  async accounts(): Promise<string[]> {
    await this.probe();
    return (await this.os?.accounts()) ?? [];
  }
}

/** What a command works with: the shared relay list, the keychain, the relay it talks to. */
export class CliContext {
  readonly dataDir = desktopDataDir();
  readonly settings = new SettingsFile(join(this.dataDir, 'settings.json'));
  readonly keychain = new CliKeychain(() => this.givenToken());
  readonly trust = new TrustStore();
  readonly registry = new RelayRegistry(this.keychain, this.settings, () => this.keychain.status, this.trust);
  readonly keys = new KeyStore(this.keychain);

  constructor(readonly flags: GlobalFlags) {}

  /** The relay `--relay` (or LIFELINE_RELAY) names, by name or id. */
  private named(): RelayRecord | undefined {
    const wanted = this.flags.relay ?? process.env.LIFELINE_RELAY;
    if (!wanted) return undefined;
    const records = this.registry.records();
    const found = records.find((r) => r.name === wanted) ?? records.find((r) => r.id === wanted);
    if (!found) throw new CliError(`No relay named "${wanted}". ${records.length ? `Known: ${records.map((r) => r.name).join(', ')}.` : 'Add one with "lifeline relay add NAME --url URL --token-file FILE".'}`);
    return found;
  }

  /** The token given for this command: --token-file, else LIFELINE_TOKEN. */
  private givenToken(): string | undefined {
    if (this.flags.tokenFile) return readTokenFile(this.flags.tokenFile);
    return process.env.LIFELINE_TOKEN?.trim() || undefined;
  }

  /** The API token for a relay: --token-file, LIFELINE_TOKEN, else the keychain. */
  async token(record: RelayRecord): Promise<string> {
    const kept = await this.keychain.get(tokenAccount(record.id));
    if (kept) return kept;
    const why = (await this.keychain.available()) ? 'the keychain holds none for it' : `there is no OS keychain (${this.keychain.cause}), so none was kept`;
    throw new CliError(`No API token for the relay "${record.name}": ${why}. Pass --token-file FILE or set LIFELINE_TOKEN.`);
  }

  async apiFor(record: RelayRecord): Promise<RelayApi> {
    return new RelayApi(record.url, await this.token(record), record.tlsFingerprint, this.trust);
  }

  /**
   * The relay to talk to: the one named, the only one, or (given a VM) the one that has the VM.
   * Several relays with the VM, or several and no VM to tell them apart: the user names one.
   */
  async relay(vm?: string): Promise<{ record: RelayRecord; api: RelayApi }> {
    const named = this.named();
    if (named) return { record: named, api: await this.apiFor(named) };
    const records = this.registry.records();
    if (records.length === 0) throw new CliError('No relay yet: add one with "lifeline relay add NAME --url URL --token-file FILE" (or --token-stdin).');
    if (records.length === 1) return { record: records[0]!, api: await this.apiFor(records[0]!) };
    const names = records.map((r) => r.name).join(', ');
    if (vm === undefined) throw new CliError(`There are ${records.length} relays (${names}): say which with --relay NAME or LIFELINE_RELAY.`);
    const holders = (
      await Promise.all(
        records.map(async (record) => {
          try {
            const api = await this.apiFor(record);
            return (await api.virtualMachines()).some((v) => v.name === vm) ? { record, api } : undefined;
          } catch {
            return undefined; // unreachable or refused: not the one
          }
        }),
      )
    ).filter((found): found is { record: RelayRecord; api: RelayApi } => found !== undefined);
    if (holders.length === 1) return holders[0]!;
    if (holders.length === 0) throw new RelayApiError(`No relay has a VM named ${vm} (looked in ${names}; unreachable ones are skipped).`, 404, 'VirtualMachineNotFound');
    throw new CliError(`${holders.length} relays have a VM named ${vm} (${holders.map((h) => h.record.name).join(', ')}): say which with --relay NAME.`);
  }
}

/** A token file: its first line, trimmed; a clear error for a missing or empty one. */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CliError(`Cannot read the token file ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`);
  }
  const token = text.split(/\r?\n/)[0]!.trim();
  if (!token) throw new CliError(`The token file ${path} is empty.`);
  return token;
}
