import type { OpenSshSession } from './openssh.js';
import type { RelayProcess } from './relay-process.js';

export type Revocation = 'disable' | 'rekey' | 'expiry';

export interface RevocationRoundsOptions {
  /** Opens a session that holds the VM (on the gateway under test), echo checked. */
  open(marker: string): Promise<OpenSshSession>;
  /** The gateway the change is made through. */
  via: RelayProcess;
  vm: string;
  /** The console's own key and another one (for re-key). */
  keys: { own: string; other: string };
  rounds: number;
  /** Around each change: cut the held session's gateway off (and back), or nothing. */
  around?: { before(): Promise<void>; after(): Promise<void> };
}

const EXPECTED: Record<Revocation, (vm: string) => string> = {
  disable: (vm) => `session closed: the console for ${vm} was disabled`,
  rekey: (vm) => `session closed: the console key for ${vm} was changed`,
  expiry: (vm) => `session closed: the console for ${vm} expired`,
};

/**
 * `rounds` times each: a session held, the console disabled / re-keyed / expiring (in 1.2 s)
 * through `via`, the time until its client reads the reason, then the console put back. For a
 * disable or re-key, ms from sending the change; for an expiry, ms from the expiration.
 */
export async function revocationRounds(options: RevocationRoundsOptions): Promise<Record<Revocation, number[]>> {
  const { via, vm, keys } = options;
  const patch = async (body: Record<string, unknown>): Promise<void> => {
    const response = await via.api('PATCH', `/v1/virtualMachines/${vm}/console`, body);
    if (response.status !== 200) throw new Error(`PATCH ${JSON.stringify(body)}: ${response.status} ${JSON.stringify(response.body)}`);
  };
  const result: Record<Revocation, number[]> = { disable: [], rekey: [], expiry: [] };
  for (const kind of ['disable', 'rekey', 'expiry'] as const) {
    for (let round = 0; round < options.rounds; round++) {
      const session = await options.open(`${kind}-${round}-`);
      await options.around?.before();
      try {
        let from = Date.now();
        if (kind === 'disable') await patch({ enabled: false });
        else if (kind === 'rekey') await patch({ sshPublicKey: { keyData: keys.other } });
        else {
          from = Date.now() + 1200;
          await patch({ expiration: new Date(from).toISOString() });
        }
        await session.waitFor(EXPECTED[kind](vm), 10_000);
        result[kind].push(Date.now() - from);
      } finally {
        session.close();
        await options.around?.after();
      }
      await patch({ enabled: true, sshPublicKey: { keyData: keys.own }, expiration: new Date(Date.now() + 3_600_000).toISOString() });
    }
  }
  return result;
}

/** p50 and p99 of each kind, as the test prints them for the note. */
export function describeRounds(result: Record<Revocation, number[]>): string {
  const q = (values: number[], p: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.ceil(p * values.length) - 1)]!;
  return (Object.entries(result) as Array<[Revocation, number[]]>).map(([kind, values]) => `${kind} ×${values.length}: p50 ${q(values, 0.5)} ms, p99 ${q(values, 0.99)} ms, max ${Math.max(...values)} ms`).join('; ');
}
