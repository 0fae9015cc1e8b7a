import { readFileSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { RelayConfig, SocketAddress } from './config.js';
import { checkFleet } from './fleet-config.js';
import { checkAdvertised, ConfigError, isAdvertisable, parseConfig } from './parse-config.js';

export { ConfigError } from './parse-config.js';

/**
 * Reads, parses and validates a YAML or JSON config file, then checks the paths it names.
 * `LIFELINE_ADVERTISE_ADDRESS` in `env` sets endpoints.default.advertiseAddress (a pod's IP in Kubernetes);
 * `LIFELINE_POSTGRES_URL` a gateway's database, `LIFELINE_JOIN_TOKEN` an agent's join token.
 */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const path = resolve(file);
  let text: string;
  try {
    // A FIFO, a device or a folder would block the read or make no sense: only a regular file is a config.
    const stats = statSync(path);
    if (!stats.isFile()) throw new ConfigError('--config', `${path} is not a regular file (it is ${kindOf(stats)}); give the path of a YAML or JSON file`);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError('--config', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  // A 0-byte file is a write that did not happen (a full or failing disk), not a wish for defaults:
  // starting on the defaults would mean another data folder, a new host key and a new admin token.
  if (text.trim() === '') throw new ConfigError('--config', `${path} is empty; write {} to run on every default`);
  let document: unknown;
  try {
    // YAML is a superset of JSON, so one parser reads both.
    document = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    throw new ConfigError('(syntax)', `${path} is not valid YAML or JSON: ${(error as Error).message.split('\n')[0]}`);
  }
  const config = parseConfig(document ?? {}, path, dirname(path));
  const advertise = env.LIFELINE_ADVERTISE_ADDRESS?.trim();
  if (advertise) {
    if (!isAdvertisable(advertise)) throw new ConfigError('LIFELINE_ADVERTISE_ADDRESS', `must be an IP address or a DNS name clients can reach (not a wildcard), got "${advertise.slice(0, 64)}"`);
    config.endpoints.default.advertiseAddress = advertise;
  }
  checkAdvertised(config);
  checkFleet(config, env);
  checkPaths(config);
  return config;
}

function kindOf(stats: Stats): string {
  if (stats.isFIFO()) return 'a named pipe';
  if (stats.isDirectory()) return 'a folder';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  return 'not a file';
}

/** Sockets may appear later (a VM not started yet), but a path that exists must be a socket and its folder must be reachable. */
function checkPaths(config: RelayConfig): void {
  for (const [index, vm] of config.virtualMachines.entries()) {
    for (const field of ['serial', 'vnc', 'qmp'] as const) {
      const address: SocketAddress | undefined = vm[field];
      if (address?.kind !== 'unix') continue;
      const key = `virtualMachines[${index}].${field}`;
      try {
        if (!statSync(address.path).isSocket()) throw new ConfigError(key, `${address.path} exists but is not a unix socket`);
      } catch (error) {
        if (error instanceof ConfigError) throw error;
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') throw new ConfigError(key, `cannot access ${address.path}: ${code}`);
        try {
          statSync(dirname(address.path));
        } catch {
          throw new ConfigError(key, `the folder of ${address.path} does not exist`);
        }
      }
    }
  }
  for (const field of ['cert', 'key'] as const) {
    const path = config.api.tls[field];
    if (path === undefined) continue;
    try {
      const stats = statSync(path);
      if (!stats.isFile()) throw new ConfigError(`api.tls.${field}`, `${path} is not a regular file (it is ${kindOf(stats)})`);
      readFileSync(path);
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(`api.tls.${field}`, `cannot read ${path}: ${(error as NodeJS.ErrnoException).code}`);
    }
  }
}
