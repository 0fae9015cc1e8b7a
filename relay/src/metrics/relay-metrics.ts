import type { ConsoleDirectory } from '../sessions/console-seam.js';
import type { CloseReason, LiveSession } from '../sessions/live-session.js';
import type { SessionSupervisor } from '../sessions/session-supervisor.js';
import { RELAY_VERSION } from '../version.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

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

/** A value read at scrape time. */
interface Sample {
  labels?: Record<string, string>;
  value: number;
}

/** Metric constructors bound to one registry, for values counted as they happen or read when scraped. */
function metricsOn(registry: Registry) {
  const registers = [registry];
  return {
    counter: (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers }),
    histogram: (name: string, help: string, labelNames: string[], buckets: number[]) => new Histogram({ name, help, labelNames, buckets, registers }),
    gauge: (name: string, help: string, labelNames: string[], read: () => Sample[]) =>
      new Gauge({
        name, help, labelNames, registers,
        collect() {
          this.reset();
          for (const { labels = {}, value } of read()) this.set(labels, value);
        },
      }),
    /** A counter whose values are read when scraped (they must only grow). */
    collectedCounter: (name: string, help: string, labelNames: string[], read: () => Sample[]) =>
      new Counter({
        name, help, labelNames, registers,
        collect() {
          this.reset();
          for (const { labels = {}, value } of read()) this.inc(labels, value);
        },
      }),
  };
}

/**
 * The relay's Prometheus metrics (`GET /metrics`): sessions by kind and path, opened and closed
 * by reason, displaced sessions, bytes by direction and kind, authentication failures by
 * method, pre-auth SSH connections and drops, VM attachment state, API requests by route and
 * status with latency histograms, and build info; beside them prom-client's default process and
 * Node.js metrics (CPU, resident memory, open file descriptors, event-loop lag, GC, heap), which
 * operators expect of any Node service. One prom-client registry per relay, never the global one.
 */
export class RelayMetrics {
  readonly registry = new Registry();
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
  private readonly observerDropped;
  private readonly apiConnectionsRefused;

  constructor(supervisor: SessionSupervisor, virtualMachines: ConsoleDirectory, audit?: { readonly healthy: boolean; readonly prunedFiles: number; readonly prunedEvents: number }) {
    collectDefaultMetrics({ register: this.registry });
    // Gauges that prom-client names like counters (promtool check metrics rejects them); the same
    // figures stay under nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
    for (const misnamed of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(misnamed);
    const r = metricsOn(this.registry);
    r.gauge('lifeline_build_info', 'The relay version and Node.js it runs on (always 1).', ['version', 'node'], () => [{ labels: { version: RELAY_VERSION, node: process.version }, value: 1 }]);
    r.gauge('lifeline_sessions_open', 'Console sessions open now, by console kind and path.', ['kind', 'path'], () => {
      const counts = new Map<string, { kind: string; path: string; n: number }>();
      for (const kind of ['serial', 'vnc']) for (const path of ['ssh', 'websocket']) if (kind === 'vnc' || path === 'ssh') counts.set(`${kind}/${path}`, { kind, path, n: 0 });
      for (const session of supervisor.sessions.list()) counts.get(`${session.kind}/${session.path}`)!.n++;
      return [...counts.values()].map(({ kind, path, n }) => ({ labels: { kind, path }, value: n }));
    });
    this.opened = r.counter('lifeline_sessions_opened_total', 'Console sessions opened, by kind and path.', ['kind', 'path']);
    this.closed = r.counter('lifeline_sessions_closed_total', 'Console sessions closed, by kind, path and reason (client-left, displaced, disabled, expired, rekeyed, deleted, vm-gone, …).', ['kind', 'path', 'reason']);
    this.displaced = r.counter('lifeline_sessions_displaced_total', 'Sessions closed because another session was opened for the same VM and kind.');
    r.collectedCounter('lifeline_session_bytes_total', 'Console bytes carried since start, by direction (in: client to VM, out: VM to client) and kind; includes open sessions.', ['kind', 'direction'], () => {
      const totals = new Map(this.endedBytes);
      for (const session of supervisor.sessions.list()) {
        totals.set(`${session.kind}/in`, (totals.get(`${session.kind}/in`) ?? 0) + session.bytesIn);
        totals.set(`${session.kind}/out`, (totals.get(`${session.kind}/out`) ?? 0) + session.bytesOut);
      }
      return ['serial', 'vnc'].flatMap((kind) => ['in', 'out'].map((direction) => ({ labels: { kind, direction }, value: totals.get(`${kind}/${direction}`) ?? 0 })));
    });
    this.observerDropped = r.counter('lifeline_vnc_observer_messages_dropped_total', 'Messages of VNC observers\' viewers the relay dropped (KeyEvent, PointerEvent, ClientCutText, XvpMessage, SetDesktopSize, QemuMessage): an observer never changes the VM.', ['message']);
    this.authFailures = r.counter('lifeline_auth_failures_total', 'Failed authentications, by method (SSH: publickey, password, keyboard-interactive, …; API: bearer).', ['method']);
    r.gauge('lifeline_preauth_connections', 'Connections not yet authenticated (ssh, api) or not yet upgraded to a WebSocket (vnc), by listener.', ['listener'], () =>
      ['ssh', 'vnc', 'api'].map((listener) => ({ labels: { listener }, value: this.preauthOpen.get(listener) ?? 0 })),
    );
    this.preauthDropped = r.counter('lifeline_preauth_dropped_total', 'Connections dropped before authentication, by listener and reason (full, random-early-drop, per-source, grace-timeout, too-many-failures).', ['listener', 'reason']);
    r.gauge('lifeline_vm_attached', 'Whether each VM\'s console channel is attached (1) or not (0), by VM and channel.', ['vm', 'channel'], () =>
      virtualMachines.list().flatMap((vm) => [
        ...(vm.serial ? [{ labels: { vm: vm.name, channel: 'serial' }, value: vm.serial.connected ? 1 : 0 }] : []),
        ...(vm.consoleTypes.includes('vnc') ? [{ labels: { vm: vm.name, channel: 'vnc' }, value: vm.powerState === 'Running' ? 1 : 0 }] : []),
      ]),
    );
    r.gauge('lifeline_vm_power_state', 'Each VM\'s power state (1 for its current state).', ['vm', 'state', 'source'], () =>
      virtualMachines.list().map((vm) => ({ labels: { vm: vm.name, state: vm.powerState, source: vm.source }, value: 1 })),
    );
    this.apiRequests = r.counter('lifeline_api_requests_total', 'Control API requests, by route, method and status.', ['route', 'method', 'status']);
    this.apiLatency = r.histogram('lifeline_api_request_duration_seconds', 'Control API request latency, by route and method.', ['route', 'method'], LATENCY_BUCKETS);
    // Disk trouble under the data folder: alert on these (consoles keep working; changes are refused).
    this.storeWriteFailures = r.counter('lifeline_store_write_failures_total', 'API changes refused because the store could not be written (503 StoreUnavailable: disk full, read-only or failing).');
    // Alert on pruning (docs/security.md): events leave the kept trail, with an audit.pruned event for each file.
    if (audit) {
      r.collectedCounter('lifeline_audit_pruned_files_total', 'Rotated audit trail files removed (beyond audit.keepFiles or older than audit.maxAge), each recorded by an audit.pruned event.', [], () => [{ value: audit.prunedFiles }]);
      r.collectedCounter('lifeline_audit_pruned_events_total', 'Audit events in the files removed by pruning.', [], () => [{ value: audit.prunedEvents }]);
    }
    this.apiConnectionsRefused = r.counter('lifeline_api_connections_refused_total', 'API connections closed by a connection cap, by reason (per-source: api.maxConnectionsPerSource; per-token: api.maxConnectionsPerToken, answered 429; total: api.maxConnections or half the open-file limit).', ['reason']);
    this.refusalsCoalesced = r.counter('lifeline_audit_refusals_coalesced_total', 'Refusals not written one by one: repeated (counted into one event with "repeated") or over-limit (audit.refusalsPerMinute; summed in audit.suppressed).', ['how']);
    if (audit) r.gauge('lifeline_audit_writable', 'Whether the last audit trail write succeeded (1); 0 while it cannot be written (API changes are refused with 503 AuditUnavailable).', [], () => [{ value: audit.healthy ? 1 : 0 }]);
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

  observerMessageDropped(message: string): void {
    this.observerDropped.inc({ message });
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

  /** The text format's content type (version 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The exposition text (what `promtool check metrics` reads). With `vmAllowed`, samples labelled
   * with another VM (`vm="…"`) are left out (a token limited to some VMs).
   */
  async render(vmAllowed?: (vm: string) => boolean): Promise<string> {
    const text = await this.registry.metrics();
    if (!vmAllowed) return text;
    return text
      .split('\n')
      .filter((line) => {
        const vm = !line.startsWith('#') && /[{,]vm="((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
        return !vm || vmAllowed(vm.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)));
      })
      .join('\n');
  }
}
