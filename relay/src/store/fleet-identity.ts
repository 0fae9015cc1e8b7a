import { hostname } from 'node:os';
import type { RelayConfig } from '../config/config.js';
import { describeHostKey, generateEd25519, type HostKey } from '../ssh/host-key.js';
import { checkKeyPair, createSelfSignedCertificate } from '../tls/self-signed.js';
import { alternativeNames, describeTls, loadTlsMaterial, tlsWanted, type TlsMaterial } from '../tls/tls-material.js';
import { MIN_FLEET_SECRET_LENGTH, seal, unseal } from './sealed-secret.js';
import type { Store } from './store.js';

const HOST_KEY_META = 'fleet.sshHostKey';
const TLS_META = 'fleet.tls';

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

/**
 * The one TLS certificate every gateway serves (so the desktop pins it once behind a load
 * balancer): the configured api.tls.cert/key files when given (the same Secret on every gateway),
 * else a self-signed one made by the first gateway and kept in the database, its key sealed under
 * LIFELINE_FLEET_SECRET. Undefined when TLS is off.
 */
export async function loadFleetTls(config: RelayConfig, store: Store, secret: string | undefined): Promise<TlsMaterial | undefined> {
  if (!tlsWanted(config) || (config.api.tls.cert && config.api.tls.key)) return loadTlsMaterial(config);
  if (!secret) {
    throw new Error('api.tls: a gateway serves the fleet\'s one TLS certificate: set LIFELINE_FLEET_SECRET (it keeps the certificate in the database, its key sealed), or give every gateway the same api.tls.cert and api.tls.key');
  }
  let kept = await store.getMeta(TLS_META);
  if (kept === undefined) {
    const names = [...alternativeNames(config), ...(config.endpoints.default.advertiseAddress ? [config.endpoints.default.advertiseAddress] : [])];
    const made = await createSelfSignedCertificate(`lifeline fleet (first made by ${hostname()})`, [...new Set(names)]);
    // Whichever gateway comes first makes it; every other one serves that one.
    kept = await store.initMeta(TLS_META, JSON.stringify({ cert: made.cert, key: seal(made.key, secret) }));
  }
  const { cert, key: sealed } = JSON.parse(kept) as { cert: string; key: string };
  const key = unseal(sealed, secret);
  if (key === undefined) throw new Error("LIFELINE_FLEET_SECRET does not open the fleet's TLS key kept in the database: every gateway needs the secret the first gateway started with");
  checkKeyPair(Buffer.from(cert), Buffer.from(key), 'the fleet database\'s TLS certificate');
  return describeTls(Buffer.from(cert), Buffer.from(key), 'fleet', '(the fleet database)');
}
