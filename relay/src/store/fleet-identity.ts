import { describeHostKey, generateEd25519, type HostKey } from '../ssh/host-key.js';
import { MIN_FLEET_SECRET_LENGTH, seal, unseal } from './sealed-secret.js';
import type { Store } from './store.js';

const HOST_KEY_META = 'fleet.sshHostKey';

export interface FleetSecrets {
  /** LIFELINE_SSH_HOST_KEY: the fleet's host key given to every gateway (a Kubernetes Secret); nothing is kept in the database. */
  hostKey?: string;
  /** LIFELINE_FLEET_SECRET: seals the fleet's private keys kept in the database; the same on every gateway. */
  secret?: string;
}

/**
 * The one SSH host key every gateway of a fleet presents (so a client behind a load balancer sees
 * one server, and agents pin one key): given to each gateway, or made by the first gateway and
 * kept in the database sealed under LIFELINE_FLEET_SECRET.
 */
export async function loadFleetHostKey(store: Store, secrets: FleetSecrets): Promise<HostKey> {
  if (secrets.hostKey) return describeHostKey(secrets.hostKey, 'LIFELINE_SSH_HOST_KEY');
  const { secret } = secrets;
  if (!secret) {
    throw new Error(
      `a gateway presents the fleet's one SSH host key: set LIFELINE_FLEET_SECRET (the same random value on every gateway, at least ${MIN_FLEET_SECRET_LENGTH} characters, e.g. from openssl rand -base64 32) to keep it in the database sealed under it, or LIFELINE_SSH_HOST_KEY (an OpenSSH private key) on every gateway`,
    );
  }
  if (secret.length < MIN_FLEET_SECRET_LENGTH) throw new Error(`LIFELINE_FLEET_SECRET is ${secret.length} characters long; it needs at least ${MIN_FLEET_SECRET_LENGTH} (openssl rand -base64 32 makes one)`);
  // Whichever gateway comes first makes the key; every other one reads that one.
  const sealed = await store.initMeta(HOST_KEY_META, seal(generateEd25519().private, secret));
  const privateKey = unseal(sealed, secret);
  if (privateKey === undefined) {
    throw new Error("LIFELINE_FLEET_SECRET does not open the fleet's SSH host key kept in the database: every gateway needs the secret the first gateway started with");
  }
  return describeHostKey(privateKey, 'the fleet database');
}
