import { join } from 'node:path';
import { runCleanups } from './cleanup.js';
import { startLab, type Lab } from './lab.js';
import { generateKey, type KeyPair } from './openssh.js';
import { startRelay, testConfig, type RelayProcess } from './relay-process.js';
import { tempDir } from './temp.js';

export interface LabRelay {
  lab: Lab;
  relay: RelayProcess;
  /** An Ed25519 key whose public half is lab-1's console key. */
  key: KeyPair;
  /** lab-1's access id: the SSH user name for its console. */
  user: string;
  /** A temp folder of the test's own (removed by `dispose`). */
  dir: string;
  /** Stops the relay and the lab VM and removes the folders. Idempotent. */
  dispose(): Promise<void>;
}

/**
 * The set-up many integration tests share: one lab VM (`lab-1`), a relay for it with the config
 * `overrides` (and each VM's entry through `mapVm`), a key, and lab-1's console enabled for that key. Cleans up after itself if a step fails.
 */
export async function startLabRelay(name: string, overrides: Record<string, unknown> = {}, mapVm?: (vm: Record<string, any>) => Record<string, any>): Promise<LabRelay> {
  const tmp = tempDir(name);
  let lab: Lab | undefined;
  let relay: RelayProcess | undefined;
  let disposed: Promise<void> | undefined;
  const dispose = (): Promise<void> => (disposed ??= runCleanups([() => relay?.stop(), () => lab?.down(), tmp.dispose]));
  try {
    lab = startLab(1);
    const dataDir = join(tmp.path, 'data');
    relay = await startRelay(testConfig(lab.configPath, dataDir, overrides, mapVm), dataDir);
    const key = generateKey(tmp.path, 'key');
    const created = await relay.api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    if (created.status !== 201) throw new Error(`creating lab-1's console: ${created.status} ${JSON.stringify(created.body)}`);
    return { lab, relay, key, user: created.body.virtualMachineAccessId as string, dir: tmp.path, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
