import type { RelayInfo } from '@lifeline/relay/client';
import type { CertificateView, KeychainStatus, RelayView } from '../../preload/contract.js';
import { tokenAccount, type Keychain } from '../services/keychain.js';
import { RelayApi, RelayApiError, type RelayInfoReply } from '../services/relay-api.js';
import { inspectCertificate, parseFingerprint, type TrustStore } from '../services/relay-tls.js';
import type { RelayRecord, SettingsFile } from '../services/settings.js';

/** No API token is kept for a relay (removed from the keychain, or not kept without one). */
export class MissingTokenError extends Error {
  override name = 'MissingTokenError';
}

type Scope = NonNullable<RelayInfo['caller']>['scopes'][number];

/**
 * The relays this app knows: their records in the settings file, their API tokens in the
 * keychain, the pinned SSH host key and TLS certificate, and what each relay says this app's
 * token may do. Adding checks the token and pins; an API client for a relay comes from here.
 */
export class RelayRegistry {
  /** The token each relay last said this app holds (scopes, VM limits), to offer only what it allows. */
  private readonly callers = new Map<string, NonNullable<RelayInfo['caller']>>();
  private readonly callerRequests = new Map<string, Promise<RelayApi>>();

  constructor(
    private readonly keychain: Keychain,
    private readonly settings: SettingsFile,
    private readonly keychainStatus: () => KeychainStatus,
    /** The CAs https:// relays are checked against (injected: one per service). */
    private readonly trust: TrustStore,
  ) {}

  records(): RelayRecord[] {
    return this.settings.get().relays;
  }

  relay(id: string): RelayRecord {
    const record = this.records().find((r) => r.id === id);
    if (!record) throw new Error(`No relay with id ${id}; it may have been removed.`);
    return record;
  }

  async api(relayId: string): Promise<RelayApi> {
    const record = this.relay(relayId);
    const token = await this.keychain.get(tokenAccount(relayId));
    if (!token) {
      throw new MissingTokenError(
        this.keychainStatus().mode === 'memory'
          ? `No API token for the relay "${record.name}": without an OS keychain it was not kept from the last run. Edit the relay and enter its token again.`
          : `No API token for the relay "${record.name}" in the keychain; edit the relay to enter it again.`,
      );
    }
    return new RelayApi(record.url, token, record.tlsFingerprint, this.trust);
  }

  private noteCaller(relayId: string, info: RelayInfoReply): void {
    if (info.caller) this.callers.set(relayId, info.caller);
    else this.callers.delete(relayId);
  }

  /**
   * Asks the relay what this app's token may do, and returns the API client it used. Asks made
   * at the same time share one request: the window's refresh lists relays and VMs together,
   * and both want the answer.
   */
  refreshCaller(relayId: string): Promise<RelayApi> {
    let pending = this.callerRequests.get(relayId);
    if (!pending) {
      pending = (async () => {
        const api = await this.api(relayId);
        this.noteCaller(relayId, await api.info());
        return api;
      })().finally(() => this.callerRequests.delete(relayId));
      this.callerRequests.set(relayId, pending);
    }
    return pending;
  }

  /** Whether the relay's token has `scope` (relays from before scoped tokens: every token is an admin token). */
  allows(relayId: string, scope: Scope): boolean {
    const caller = this.callers.get(relayId);
    return !caller || caller.scopes.includes('admin') || caller.scopes.includes(scope);
  }

  async view(record: RelayRecord): Promise<RelayView> {
    const base = {
      id: record.id,
      name: record.name,
      url: record.url,
      embedded: record.embedded,
      hostKeyFingerprint: record.hostKeyFingerprint,
      endpoint: record.endpoint,
      ...(record.tlsFingerprint && { tlsFingerprint: record.tlsFingerprint }),
    };
    try {
      await this.refreshCaller(record.id);
      const caller = this.callers.get(record.id);
      return {
        ...base,
        status: 'ok',
        ...(caller && { token: { name: caller.name, scopes: caller.scopes, ...(caller.virtualMachines && { virtualMachines: caller.virtualMachines }) } }),
        allowed: { endpoints: this.allows(record.id, 'endpoints') },
      };
    } catch (error) {
      const refused = (error instanceof RelayApiError && error.status === 401) || error instanceof MissingTokenError;
      const untrusted = error instanceof RelayApiError && (error.code === 'TlsCertificateChanged' || error.code === 'TlsUntrusted');
      return { ...base, status: untrusted ? 'untrusted' : refused ? 'unauthorized' : 'unreachable', error: (error as Error).message, allowed: { endpoints: false } };
    }
  }

  async inspectCertificate(url: string): Promise<CertificateView> {
    const parsed = this.relayUrl(url);
    if (!parsed.startsWith('https://')) throw new Error(`${parsed} is plain HTTP: there is no certificate to check. Use https:// if the relay has TLS on.`);
    try {
      return await inspectCertificate(parsed, this.trust);
    } catch (error) {
      throw new Error(`Cannot reach the relay at ${parsed} over TLS (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`, { cause: error });
    }
  }

  private relayUrl(input: string): string {
    const url = input.trim().replace(/\/+$/, '');
    if (!/^https?:\/\/[^\s/]+$/.test(url)) throw new Error(`"${input}" is not a relay API URL such as https://relay.example:8440 or http://127.0.0.1:8440`);
    return url;
  }

  /**
   * Which certificate to pin for an https:// relay: the one the user confirmed or pasted (it must be
   * the one presented), the one already pinned, or none when the system's CAs trust it.
   */
  private async tlsPin(url: string, given: string | undefined, existing: string | undefined): Promise<string | undefined> {
    if (!url.startsWith('https://')) return undefined;
    const presented = await this.inspectCertificate(url);
    if (given !== undefined) {
      const wanted = parseFingerprint(given);
      if (!wanted) throw new Error('The certificate fingerprint should be 32 hex pairs (AB:CD:…), as "lifeline-relay info" prints it; paste its output or the fingerprint.');
      if (wanted !== presented.fingerprint) {
        throw new Error(`The relay presents the TLS certificate ${presented.fingerprint}, not the ${wanted} you gave. Lifeline refuses it: check the fingerprint with "lifeline-relay info" on the relay.`);
      }
      return wanted;
    }
    if (existing !== undefined) return existing;
    if (presented.trusted) return undefined;
    throw new Error(`The relay's TLS certificate is not trusted by this system (${presented.untrustedBecause}); confirm its fingerprint ${presented.fingerprint} to pin it.`);
  }

  async list(): Promise<RelayView[]> {
    return Promise.all(this.records().map((record) => this.view(record)));
  }

  /**
   * Adds (or, for the embedded relay, re-registers) a relay: checks the token, pins the host key.
   * `hostKeyGiven`: the fingerprint of a host key this app gave the relay itself (the embedded relay
   * without an OS keychain gets a new one each run); it replaces the pin instead of being refused.
   */
  async register(input: { name: string; url: string; token: string; embedded: boolean; hostKeyGiven?: string; tlsFingerprint?: string }): Promise<RelayView> {
    const url = this.relayUrl(input.url);
    const known = this.records().find((r) => r.url === url);
    const pin = await this.tlsPin(url, input.tlsFingerprint, known?.tlsFingerprint);
    const info = await new RelayApi(url, input.token.trim(), pin, this.trust).info();
    const hostKey = info.sshHostKeys[0]?.fingerprint;
    if (!hostKey) throw new Error('The relay reported no SSH host key.');
    const existing = this.records().find((r) => r.id === info.id);
    if (input.hostKeyGiven !== undefined && input.hostKeyGiven !== hostKey) {
      throw new Error(`The embedded relay presents the SSH host key ${hostKey}, not the ${input.hostKeyGiven} it was started with.`);
    }
    if (existing && existing.hostKeyFingerprint !== hostKey && input.hostKeyGiven === undefined) {
      throw new Error(
        `The relay ${info.id} now presents the SSH host key ${hostKey}, not the pinned ${existing.hostKeyFingerprint}. ` +
          'Lifeline refuses it, as OpenSSH would. If the relay was reinstalled, remove it and add it again.',
      );
    }
    await this.keychain.set(tokenAccount(info.id), input.token.trim());
    const record: RelayRecord = {
      id: info.id,
      name: input.name.trim() || url,
      url,
      embedded: input.embedded,
      hostKeyFingerprint: hostKey,
      endpoint: existing?.endpoint ?? 'default',
      ...(pin && { tlsFingerprint: pin }),
    };
    this.settings.update((s) => {
      s.relays = [...s.relays.filter((r) => r.id !== info.id), record];
    });
    return this.view(record);
  }

  async update(input: { id: string; name?: string; token?: string; endpoint?: string; tlsFingerprint?: string }): Promise<RelayView> {
    let record = this.relay(input.id);
    if (input.tlsFingerprint?.trim()) {
      // A replaced certificate: the user checked the new fingerprint on the relay. It must be what the relay presents,
      // and the relay behind it must be the same one (same id, same SSH host key).
      const pin = await this.tlsPin(record.url, input.tlsFingerprint, undefined);
      const token = input.token?.trim() || (await this.keychain.get(tokenAccount(record.id)));
      if (token) {
        const info = await new RelayApi(record.url, token, pin, this.trust).info();
        if (info.id !== record.id) throw new Error(`The relay at ${record.url} is now another relay (id ${info.id}); remove this one and add it again.`);
        if (info.sshHostKeys[0]?.fingerprint !== record.hostKeyFingerprint) {
          throw new Error(`The relay at ${record.url} now presents the SSH host key ${info.sshHostKeys[0]?.fingerprint}, not the pinned ${record.hostKeyFingerprint}; remove it and add it again.`);
        }
      }
      record = { ...record, tlsFingerprint: pin };
    }
    if (input.token !== undefined) {
      await new RelayApi(record.url, input.token.trim(), record.tlsFingerprint, this.trust).info();
      await this.keychain.set(tokenAccount(record.id), input.token.trim());
    }
    if (input.endpoint !== undefined) {
      const endpoints = await (await this.api(record.id)).endpoints();
      if (!endpoints.some((e) => e.name === input.endpoint)) throw new Error(`The relay has no private endpoint "${input.endpoint}".`);
    }
    const next = { ...record, ...(input.name !== undefined && { name: input.name.trim() || record.name }), ...(input.endpoint !== undefined && { endpoint: input.endpoint }) };
    this.settings.update((s) => {
      s.relays = s.relays.map((r) => (r.id === record.id ? next : r));
    });
    return this.view(next);
  }

  /** Forgets a relay: its token and its record (its keys are the key store's). */
  async remove(id: string): Promise<void> {
    this.relay(id);
    await this.keychain.delete(tokenAccount(id));
    this.callers.delete(id);
    this.settings.update((s) => {
      s.relays = s.relays.filter((r) => r.id !== id);
    });
  }
}
