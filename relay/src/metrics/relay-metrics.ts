import type { VirtualMachineRegistry } from '../backends/virtual-machines.js';
import type { CloseReason, LiveSession } from '../sessions/live-session.js';
import type { SessionSupervisor } from '../sessions/session-supervisor.js';
import { RELAY_VERSION } from '../version.js';
import { MetricsRegistry } from './registry.js';

/** How a connection's pre-authentication phase ended: in, or why not. */
export type PreauthOutcome = 'authenticated' | 'grace-timeout' | 'too-many-failures' | 'closed';

/** What a listener (SSH, or the VNC port before its WebSocket upgrade) reports before a client is in. */
export interface PreauthMetrics {
  opened(): void;
  ended(outcome: PreauthOutcome): void;
  /** Refused at accept: `full`, `random-early-drop`, `per-source` (MaxStartups). */
  dropped(reason: string): void;
}

export interface SshMetrics extends PreauthMetrics {
  authFailed(method: string): void;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The relay's Prometheus metrics (`GET /metrics`): sessions by kind and path, opened and closed
 * by reason, displaced sessions, bytes by direction and kind, authentication failures by
 * method, pre-auth SSH connections and drops, VM attachment state, API requests by route and
 * status with latency histograms, and build info.
 */
export class RelayMetrics {
  readonly registry = new MetricsRegistry();
  private readonly opened;
  private readonly closed;
  private readonly displaced;
  private readonly authFailures;
  private readonly preauthDropped;
  private readonly apiRequests;
  private readonly apiLatency;
  private readonly storeWriteFailures;
  /** Bytes of sessions that have ended, by kind and direction; open sessions are added at scrape time. */
  private readonly endedBytes = new Map<string, number>();
  private readonly preauthOpen = new Map<string, number>();

  private readonly refusalsCoalesced;
  private readonly apiConnectionsRefused;

  constructor(supervisor: SessionSupervisor, virtualMachines: VirtualMachineRegistry, audit?: { readonly healthy: boolean; readonly prunedFiles: number; readonly prunedEvents: number }) {
    const r = this.registry;
    r.gauge('lifeline_build_info', 'The relay version and Node.js it runs on (always 1).', () => [{ labels: { version: RELAY_VERSION, node: process.version }, value: 1 }]);
    r.gauge('lifeline_sessions_open', 'Console sessions open now, by console kind and path.', () => {
      const counts = new Map<string, { kind: string; path: string; n: number }>();
      for (const kind of ['serial', 'vnc']) for (const path of ['ssh', 'websocket']) if (kind === 'vnc' || path === 'ssh') counts.set(`${kind}/${path}`, { kind, path, n: 0 });
      for (const session of supervisor.sessions.list()) counts.get(`${session.kind}/${session.path}`)!.n++;
      return [...counts.values()].map(({ kind, path, n }) => ({ labels: { kind, path }, value: n }));
    });
    this.opened = r.counter('lifeline_sessions_opened_total', 'Console sessions opened, by kind and path.');
    this.closed = r.counter('lifeline_sessions_closed_total', 'Console sessions closed, by kind, path and reason (client-left, displaced, disabled, expired, rekeyed, deleted, vm-gone, …).');
    this.displaced = r.counter('lifeline_sessions_displaced_total', 'Sessions closed because another session was opened for the same VM and kind.');
    r.collectedCounter('lifeline_session_bytes_total', 'Console bytes carried since start, by direction (in: client to VM, out: VM to client) and kind; includes open sessions.', () => {
      const totals = new Map(this.endedBytes);
      for (const session of supervisor.sessions.list()) {
        totals.set(`${session.kind}/in`, (totals.get(`${session.kind}/in`) ?? 0) + session.bytesIn);
        totals.set(`${session.kind}/out`, (totals.get(`${session.kind}/out`) ?? 0) + session.bytesOut);
      }
      return ['serial', 'vnc'].flatMap((kind) => ['in', 'out'].map((direction) => ({ labels: { kind, direction }, value: totals.get(`${kind}/${direction}`) ?? 0 })));
    });
    this.authFailures = r.counter('lifeline_auth_failures_total', 'Failed authentications, by method (SSH: publickey, password, keyboard-interactive, …; API: bearer).');
    r.gauge('lifeline_preauth_connections', 'Connections not yet authenticated (ssh, api) or not yet upgraded to a WebSocket (vnc), by listener.', () =>
      ['ssh', 'vnc', 'api'].map((listener) => ({ labels: { listener }, value: this.preauthOpen.get(listener) ?? 0 })),
    );
    this.preauthDropped = r.counter('lifeline_preauth_dropped_total', 'Connections dropped before authentication, by listener and reason (full, random-early-drop, per-source, grace-timeout, too-many-failures).');
    r.gauge('lifeline_vm_attached', 'Whether each VM\'s console channel is attached (1) or not (0), by VM and channel.', () =>
      virtualMachines.list().flatMap((vm) => [
        ...(vm.serial ? [{ labels: { vm: vm.name, channel: 'serial' }, value: vm.serial.connected ? 1 : 0 }] : []),
        ...(vm.consoleTypes.includes('vnc') ? [{ labels: { vm: vm.name, channel: 'vnc' }, value: vm.powerState === 'Running' ? 1 : 0 }] : []),
      ]),
    );
    r.gauge('lifeline_vm_power_state', 'Each VM\'s power state (1 for its current state).', () =>
      virtualMachines.list().map((vm) => ({ labels: { vm: vm.name, state: vm.powerState, source: vm.source }, value: 1 })),
    );
    this.apiRequests = r.counter('lifeline_api_requests_total', 'Control API requests, by route, method and status.');
    this.apiLatency = r.histogram('lifeline_api_request_duration_seconds', 'Control API request latency, by route and method.', LATENCY_BUCKETS);
    // Disk trouble under the data folder: alert on these (consoles keep working; changes are refused).
    this.storeWriteFailures = r.counter('lifeline_store_write_failures_total', 'API changes refused because the store could not be written (503 StoreUnavailable: disk full, read-only or failing).');
    // Alert on pruning (docs/security.md): events leave the kept trail, with an audit.pruned event for each file.
    if (audit) {
      r.collectedCounter('lifeline_audit_pruned_files_total', 'Rotated audit trail files removed (beyond audit.keepFiles or older than audit.maxAge), each recorded by an audit.pruned event.', () => [{ value: audit.prunedFiles }]);
      r.collectedCounter('lifeline_audit_pruned_events_total', 'Audit events in the files removed by pruning.', () => [{ value: audit.prunedEvents }]);
    }
    this.apiConnectionsRefused = r.counter('lifeline_api_connections_refused_total', 'API connections closed by a connection cap, by reason (per-source: api.maxConnectionsPerSource; per-token: api.maxConnectionsPerToken, answered 429; total: api.maxConnections or half the open-file limit).');
    this.refusalsCoalesced = r.counter('lifeline_audit_refusals_coalesced_total', 'Refusals not written one by one: repeated (counted into one event with "repeated") or over-limit (audit.refusalsPerMinute; summed in audit.suppressed).');
    if (audit) r.gauge('lifeline_audit_writable', 'Whether the last audit trail write succeeded (1); 0 while it cannot be written (API changes are refused with 503 AuditUnavailable).', () => [{ value: audit.healthy ? 1 : 0 }]);
  }

  apiConnectionRefused(reason: string): void {
    this.apiConnectionsRefused.inc({ reason });
  }

  refusalCoalesced(how: 'repeated' | 'over-limit'): void {
    this.refusalsCoalesced.inc({ how });
  }

  storeWriteFailed(): void {
    this.storeWriteFailures.inc();
  }

  sessionOpened(session: LiveSession): void {
    this.opened.inc({ kind: session.kind, path: session.path });
  }

  sessionClosed(session: LiveSession, reason: CloseReason): void {
    this.closed.inc({ kind: session.kind, path: session.path, reason: reason.code });
    if (reason.code === 'displaced') this.displaced.inc();
    this.endedBytes.set(`${session.kind}/in`, (this.endedBytes.get(`${session.kind}/in`) ?? 0) + session.bytesIn);
    this.endedBytes.set(`${session.kind}/out`, (this.endedBytes.get(`${session.kind}/out`) ?? 0) + session.bytesOut);
  }

  authFailed(method: string): void {
    this.authFailures.inc({ method });
  }

  /** The pre-auth counters of one listener. */
  preauth(listener: 'ssh' | 'vnc' | 'api'): PreauthMetrics {
    return {
      opened: () => void this.preauthOpen.set(listener, (this.preauthOpen.get(listener) ?? 0) + 1),
      ended: (outcome) => {
        this.preauthOpen.set(listener, (this.preauthOpen.get(listener) ?? 1) - 1);
        if (outcome === 'grace-timeout' || outcome === 'too-many-failures') this.preauthDropped.inc({ listener, reason: outcome });
      },
      dropped: (reason) => this.preauthDropped.inc({ listener, reason }),
    };
  }

  readonly ssh: SshMetrics = { ...this.preauth('ssh'), authFailed: (method) => this.authFailed(method) };

  apiRequest(route: string, method: string, status: number, seconds: number): void {
    this.apiRequests.inc({ route, method, status: String(status) });
    this.apiLatency.observe({ route, method }, seconds);
  }
}
