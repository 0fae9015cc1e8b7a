/** What API clients (the desktop app, scripts) may import: the wire types of the control API v1, and the helpers the relay and the desktop share. */
export type {
  ConsolePatchBody,
  ConsolePutBody,
  ConsoleResource,
  EndpointPutBody,
  EndpointResource,
  ErrorBody,
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
