/**
 * The relay as a library: what `lifeline-relay serve` does, for a program that embeds it.
 * The control API's wire types are in `@lifeline/relay/client`.
 */
export { loadConfigFile, ConfigError } from './config/load-config.js';
export type { RelayConfig, VirtualMachineConfig, SocketAddress } from './config/config.js';
export { createLogger, type Logger } from './logger.js';
export { createRelay, type Relay, type RelayOptions } from './relay.js';
export { RELAY_VERSION } from './version.js';
