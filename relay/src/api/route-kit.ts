import type { SecureContextOptions } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { AuditTrail } from '../audit/audit-format.js';
import type { RefusalRecorder } from '../audit/refusal-recorder.js';
import type { ConsoleDirectory, VmConsole } from '../sessions/console-seam.js';
import type { FailureBackoff, StartupLimiter } from '../core/preauth-limits.js';
import { RelayError } from './relay-error.js';
import type { Scope } from '../core/scopes.js';
import type { EndpointManager } from '../endpoints/endpoint-manager.js';
import type { Logger } from '../logger.js';
import type { PreauthMetrics, RelayMetrics } from '../metrics/relay-metrics.js';
import type { ConsoleService } from '../sessions/console-service.js';
import type { SessionSupervisor } from '../sessions/session-supervisor.js';
import type { Store, TokenRecord } from '../store/store.js';
import type { VncTokens } from '../vnc/vnc-tokens.js';
import type { RecordingCatalog } from '../recordings/recording-catalog.js';
import type { ConnectionLimits } from './connection-limits.js';
import type { AgentResource } from './fleet-schemas.js';
import * as S from './schemas.js';

/** What the API's plugins and route modules are built on. */
export interface ApiDependencies {
  store: Store;
  consoles: ConsoleService;
  endpoints: EndpointManager;
  virtualMachines: ConsoleDirectory;
  supervisor: SessionSupervisor;
  vncTokens: VncTokens;
  /** Session recordings: this relay's, or on a fleet gateway its agents' (absent: the recordings routes are not served). */
  recordings?: RecordingCatalog;
  relayInfo: () => Omit<S.RelayInfo, 'endpoints' | 'caller'>;
  log: Logger;
  audit: AuditTrail;
  /** Request counts and latencies go here, and `GET /metrics` renders it. */
  metrics?: RelayMetrics;
  /** Delays the 401s of an address that keeps sending bad tokens. */
  failures?: FailureBackoff;
  /** Refusals go to the audit trail through this (coalesced and capped); written directly without it. */
  refusals?: RefusalRecorder;
  /** Caps on API connections per address, per token and in all (connection-limits.ts). */
  connectionLimits?: ConnectionLimits;
  /**
   * MaxStartups and a grace time for connections that have not yet made an authenticated request
   * (a connection passes with its first request carrying a valid token).
   */
  preauth?: { startups: StartupLimiter; graceMs: number; metrics?: PreauthMetrics };
  now?: () => number;
  /** A fleet gateway's agents (GET /v1/agents, join tokens); absent on a standalone relay. */
  fleet?: FleetApi;
  /** TLS material for the API (and the scheme of VNC token URLs); plain HTTP when absent. */
  https?: SecureContextOptions & { cert: Buffer; key: Buffer };
}

/** What the API needs of a gateway's fleet. */
export interface FleetApi {
  listAgents(): Promise<AgentResource[]>;
  /** A single-use join token for `agent`, valid until `expiresAt`. */
  createJoinToken(agent: string, expiresAt: number): Promise<string>;
  /** The fleet's SSH host key fingerprint (what agents pin). */
  readonly caFingerprint: string;
  deleteAgent(name: string): Promise<boolean>;
  /** This gateway, as session lists name it (its agents address, else its id). */
  readonly gatewayName: string;
  /** The sessions the other gateways hold. */
  remoteSessions(): Promise<S.SessionResource[]>;
  /** Asks the gateway holding session `id` to close it, if `allowed` (its VM); the session, or undefined when no gateway holds one the caller may close. */
  closeRemoteSession(id: string, allowed: (virtualMachine: string) => boolean): Promise<S.SessionResource | undefined>;
}

/** The options every plugin and route module is registered with. */
export interface ApiPluginOptions {
  deps: ApiDependencies;
  now: () => number;
}

/** What a route needs of its caller, and what it records (route `config`). */
export interface RouteAccess {
  /** The scope the caller's token needs; none: any valid token. */
  scope?: Scope;
  /** The audit action an answered request is recorded as; GETs are recorded only when refused. */
  audit?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** The token the request came with (its record: hash, name, scopes; never the token itself); set by the auth plugin. */
    caller: TokenRecord | null;
    /** What the handler adds to the request's audit event (the VM, the new key's fingerprint…). */
    auditDetails: Record<string, unknown> | null;
    /** The refusal was only counted, not written to the trail: it is not logged one by one either. */
    auditQuiet: boolean;
  }
}

/** Route options for a route's access rule. */
export const access = (routeAccess: RouteAccess): { config: { access: RouteAccess } } => ({ config: { access: routeAccess } });

/** The error responses every authenticated route may give, in the documented shape. */
export const ERRORS = { 400: S.ErrorBody, 401: S.ErrorBody, 403: S.ErrorBody, 404: S.ErrorBody, 405: S.ErrorBody, 409: S.ErrorBody, 413: S.ErrorBody, 415: S.ErrorBody, 422: S.ErrorBody, 503: S.ErrorBody };

/** The caller of a route with an access rule (the auth plugin refused the request otherwise). */
export function callerOf(request: FastifyRequest): TokenRecord {
  if (!request.caller) throw new Error('internal error: a route with an access rule ran without a caller');
  return request.caller;
}

/** Adds to the request's audit event. */
export function note(request: FastifyRequest, details: Record<string, unknown>): void {
  request.auditDetails = { ...request.auditDetails, ...details };
}

export function requireVm(deps: ApiDependencies, name: string): VmConsole {
  const vm = deps.virtualMachines.get(name);
  if (!vm) throw new RelayError(404, 'VirtualMachineNotFound', `no virtual machine named "${name}" is known to this relay; list them with GET /v1/virtualMachines`);
  return vm;
}
