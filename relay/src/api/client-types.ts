/** What API clients (the desktop app, scripts) may import: the wire types of the control API v1, and the helpers the relay and the desktop share. */
export type {
  ConsolePatchBody,
  ConsolePutBody,
  ConsoleResource,
  EndpointPutBody,
  EndpointResource,
  ErrorBody,
  RecordingResource,
  RelayInfo,
  SessionResource,
  TokenCreateBody,
  TokenCreated,
  TokenResource,
  VirtualMachineResource,
  VncToken,
} from './schemas.js';

export { serveStaticFile } from '../http/static-files.js';
export { onShutdown, type ShutdownCause } from '../process/shutdown.js';
export { acquirePidLock, type PidLockOptions } from '../shared/pid-lock.js';
export { terminate } from '../shared/terminate.js';
export { processAlive } from '../core/process-alive.js';
export { fingerprintOf } from '../core/ssh-public-key.js';
export { generateEd25519 } from '../ssh/host-key.js';
export { newApiToken, tokenPrefix } from '../admin-token.js';
export { VM_NAME } from '../config/config.js';
export { isRelayReadyMessage, type RelayReadyMessage } from '../process/ready-message.js';
/** The API's schemas (TypeBox): what a client validates the relay's replies with, and the enums written once. */
export * as schemas from './schemas.js';
export { sendSshBreak } from '../ssh/ssh2-internals.js';
export { CLOSE_EXIT_STATUS, type CloseCode } from '../sessions/live-session.js';
export { parseDuration } from '../core/duration.js';
export * as fleetSchemas from './fleet-schemas.js';
export { endWithHttpResponse } from '../http/raw-response.js';
