import { randomUUID } from 'node:crypto';
import { resolveExpiration, type ConsoleRecord, type ConsoleRecording, type TtlPolicy } from '../core/console-rules.js';
import { DomainError } from '../core/domain-error.js';
import { parseSshPublicKey } from '../ssh/key-policy.js';
import type { Store } from '../store/store.js';

export interface ConsoleInput {
  enabled?: boolean;
  sshPublicKey?: { keyData: string };
  expiration?: string;
  allowObservers?: boolean;
  maxObservers?: number;
  recording?: ConsoleRecording;
}

/** The sharing settings given in `input` (the API's schema has checked their ranges). */
function sharingInput(input: ConsoleInput): Pick<ConsoleRecord, 'allowObservers' | 'maxObservers' | 'recording'> {
  return {
    ...(input.allowObservers !== undefined && { allowObservers: input.allowObservers }),
    ...(input.maxObservers !== undefined && { maxObservers: input.maxObservers }),
    ...(input.recording !== undefined && { recording: input.recording }),
  };
}

/**
 * What a console change means: `reset` when the console now belongs to someone else (deleted or
 * re-keyed: its kept output goes), and the record as written (undefined once deleted).
 */
export interface ConsoleChange {
  reset: boolean;
  record: ConsoleRecord | undefined;
}

/**
 * Creates, changes and deletes Console resources. Everything is validated before the one
 * store write, so a rejected request changes nothing. `onChange` runs after every write so
 * live sessions are re-checked at once.
 */
export class ConsoleService {
  constructor(
    private readonly store: Store,
    private readonly policy: TtlPolicy,
    private readonly hasVirtualMachine: (name: string) => boolean,
    private readonly onChange: (virtualMachine: string, change: ConsoleChange) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {}

  private requireVm(name: string): void {
    if (!this.hasVirtualMachine(name)) {
      throw new DomainError('not-found', 'VirtualMachineNotFound', `no virtual machine named "${name.slice(0, 64)}" is known to this relay; list them with GET /v1/virtualMachines`);
    }
  }

  private key(keyData: string): { keyData: string; keyFingerprint: string } {
    const parsed = parseSshPublicKey(keyData);
    if (!parsed.ok) throw new DomainError('invalid', 'InvalidSshPublicKey', `sshPublicKey.keyData: ${parsed.message}`);
    const comment = parsed.key.comment ? ` ${parsed.key.comment}` : '';
    return { keyData: `${parsed.key.canonical}${comment}`, keyFingerprint: parsed.key.fingerprint };
  }

  private expiration(requested: string | undefined, now: number): number {
    const result = resolveExpiration(requested, now, this.policy);
    if (!result.ok) throw new DomainError('invalid', 'InvalidExpiration', `expiration: ${result.message}`);
    return result.value;
  }

  async get(virtualMachine: string): Promise<ConsoleRecord> {
    this.requireVm(virtualMachine);
    const record = await this.store.getConsole(virtualMachine);
    if (!record) {
      throw new DomainError('not-found', 'ConsoleNotFound', `virtual machine "${virtualMachine}" has no console; create one with PUT /v1/virtualMachines/${virtualMachine}/console`);
    }
    return record;
  }

  /** Creates or replaces the console. The access id is kept when replacing, new when creating. */
  async put(virtualMachine: string, input: Required<Pick<ConsoleInput, 'enabled' | 'sshPublicKey'>> & ConsoleInput): Promise<{ record: ConsoleRecord; created: boolean }> {
    this.requireVm(virtualMachine);
    const now = this.now();
    const key = this.key(input.sshPublicKey.keyData);
    const expiration = this.expiration(input.expiration, now);
    const existing = await this.store.getConsole(virtualMachine);
    const record: ConsoleRecord = {
      virtualMachine,
      enabled: input.enabled,
      ...key,
      expiration,
      accessId: existing?.accessId ?? randomUUID(),
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      ...sharingInput(input),
    };
    await this.store.putConsole(record);
    await this.onChange(virtualMachine, { reset: existing !== undefined && existing.keyFingerprint !== record.keyFingerprint, record });
    return { record, created: !existing };
  }

  async patch(virtualMachine: string, input: ConsoleInput): Promise<ConsoleRecord> {
    const existing = await this.get(virtualMachine);
    const now = this.now();
    const record: ConsoleRecord = {
      ...existing,
      ...(input.enabled !== undefined && { enabled: input.enabled }),
      ...(input.sshPublicKey !== undefined && this.key(input.sshPublicKey.keyData)),
      ...(input.expiration !== undefined && { expiration: this.expiration(input.expiration, now) }),
      ...sharingInput(input),
      updatedAt: now,
    };
    await this.store.putConsole(record);
    await this.onChange(virtualMachine, { reset: existing.keyFingerprint !== record.keyFingerprint, record });
    return record;
  }

  async delete(virtualMachine: string): Promise<void> {
    this.requireVm(virtualMachine);
    if (!(await this.store.deleteConsole(virtualMachine))) {
      throw new DomainError('not-found', 'ConsoleNotFound', `virtual machine "${virtualMachine}" has no console`);
    }
    await this.onChange(virtualMachine, { reset: true, record: undefined });
  }

  async list(): Promise<Map<string, ConsoleRecord>> {
    return new Map((await this.store.listConsoles()).map((record) => [record.virtualMachine, record]));
  }
}
