/** What API clients (the desktop app, scripts) may import: the wire types of the control API v1. */
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
