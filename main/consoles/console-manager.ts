import type { ConsoleResource } from '@lifeline/relay/client';
import type { ConsoleKind, DesktopEvent, PowerAction, VmView } from '../../preload/contract.js';
import type { KeyStore } from '../keys/key-store.js';
import type { RelayRegistry } from '../relays/relay-registry.js';
import type { RelayApi } from '../services/relay-api.js';
import type { KeyPair } from '../services/ssh-keys.js';

/** The console holds a key this app does not have; re-keying it needs the user's say-so. */
export class KeyConflictError extends Error {
  override name = 'KeyConflictError';

  constructor(
    readonly vm: string,
    readonly keyFingerprint: string,
  ) {
    super(`The console of ${vm} holds another key (${keyFingerprint}), not this app's. Opening it replaces that key and locks out whoever holds it; confirm to replace it.`);
  }
}

/** Renew when less than this share of the console's lifetime is left (and at least this long before expiry). */
export const RENEW_AT_REMAINING_SHARE = 0.25;

type RelayVm = { name: string; powerState: string; consoleTypes: ConsoleKind[]; powerActions?: PowerAction[]; serialBreak?: boolean; agent?: string; console?: ConsoleResource };

/**
 * The VMs of every relay and their Console resources: listed as the window shows them, made
 * ready for this app's key (created, enabled, renewed, re-keyed only with consent), renewed,
 * disabled, deleted, and the VMs' power actions.
 */
export class ConsoleManager {
  constructor(
    private readonly relays: RelayRegistry,
    private readonly keys: KeyStore,
    private readonly emit: (event: DesktopEvent) => void,
    private readonly now: () => number,
  ) {}

  private async vmView(relayId: string, vm: RelayVm): Promise<VmView> {
    const record = this.relays.relay(relayId);
    const own = await this.keys.own(relayId, vm.name);
    const c = vm.console;
    const state = !c ? 'none' : c.detailedStatus === 'Disabled' ? 'disabled' : c.detailedStatus === 'Expired' ? 'expired' : 'enabled';
    return {
      relayId,
      relayName: record.name,
      name: vm.name,
      powerState: vm.powerState,
      consoleTypes: vm.consoleTypes,
      powerActions: vm.powerActions ?? [],
      serialBreak: vm.serialBreak === true,
      ...(vm.agent !== undefined && { agent: vm.agent }),
      allowed: { consoles: this.relays.allows(relayId, 'consoles:write'), power: this.relays.allows(relayId, 'power') },
      console: { state, expiresAt: c?.expiration, keyFingerprint: c?.keyFingerprint, ownKey: Boolean(c && own && own.fingerprint === c.keyFingerprint), ...(c?.allowObservers !== undefined && { allowObservers: c.allowObservers }) },
    };
  }

  async listVms(): Promise<VmView[]> {
    const views: VmView[] = [];
    for (const record of this.relays.records()) {
      let vms;
      try {
        const api = await this.relays.refreshCaller(record.id);
        vms = await api.virtualMachines();
      } catch {
        continue; // listRelays says why
      }
      for (const vm of vms) views.push(await this.vmView(record.id, vm));
    }
    return views;
  }

  private async vmAfter(relayId: string, vm: string): Promise<VmView> {
    const found = (await (await this.relays.api(relayId)).virtualMachines()).find((v) => v.name === vm);
    if (!found) throw new Error(`The relay has no VM named ${vm}.`);
    return this.vmView(relayId, found);
  }

  async defaultTtlMs(api: RelayApi): Promise<number> {
    return (await api.info()).consoleDefaults.defaultTtlSeconds * 1000;
  }

  async renewConsole(relayId: string, vm: string): Promise<VmView> {
    const api = await this.relays.api(relayId);
    const expiration = new Date(this.now() + (await this.defaultTtlMs(api))).toISOString();
    const updated = await api.patchConsole(vm, { expiration });
    this.emit({ type: 'consoleRenewed', relayId, vm, expiresAt: updated.expiration });
    return this.vmAfter(relayId, vm);
  }

  async powerAction(relayId: string, vm: string, action: PowerAction): Promise<VmView> {
    await (await this.relays.api(relayId)).powerAction(vm, action);
    return this.vmAfter(relayId, vm);
  }

  async disableConsole(relayId: string, vm: string): Promise<VmView> {
    await (await this.relays.api(relayId)).patchConsole(vm, { enabled: false });
    return this.vmAfter(relayId, vm);
  }

  async deleteConsole(relayId: string, vm: string): Promise<VmView> {
    await (await this.relays.api(relayId)).deleteConsole(vm);
    await this.keys.delete(relayId, vm);
    return this.vmAfter(relayId, vm);
  }

  /**
   * Makes the console usable with our key: creates it, enables it or renews it as needed. A
   * console holding another key is re-keyed only when the user agreed to replace exactly that key
   * (`replaceKey`): re-keying locks out whoever holds it.
   */
  async readyConsole(api: RelayApi, vm: string, key: KeyPair, ttlMs: number, replaceKey?: string): Promise<ConsoleResource> {
    const current = await api.console(vm);
    const keyData = key.publicKey;
    if (!current) return api.putConsole(vm, { enabled: true, sshPublicKey: { keyData } });
    if (current.keyFingerprint !== key.fingerprint && current.keyFingerprint !== replaceKey) throw new KeyConflictError(vm, current.keyFingerprint);
    const remaining = Date.parse(current.expiration) - this.now();
    const change: { enabled?: boolean; sshPublicKey?: { keyData: string }; expiration?: string } = {};
    if (!current.enabled) change.enabled = true;
    if (current.keyFingerprint !== key.fingerprint) change.sshPublicKey = { keyData };
    if (remaining < ttlMs * RENEW_AT_REMAINING_SHARE) change.expiration = new Date(this.now() + ttlMs).toISOString();
    return Object.keys(change).length > 0 ? api.patchConsole(vm, change) : current;
  }
}
