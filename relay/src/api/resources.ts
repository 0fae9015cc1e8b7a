import { detailedStatus, sharingOf, type ConsoleRecord } from '../core/console-rules.js';
import type { VmConsole } from '../sessions/console-seam.js';
import type { LiveSession } from '../sessions/live-session.js';
import type { TokenRecord } from '../store/store.js';
import type * as S from './schemas.js';

/** How the API writes the relay's records: resources as the schemas describe them. */

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** An address or host name as a URL's host: IPv6 in brackets. */
export function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function tokenResource(record: TokenRecord): S.TokenResource {
  return {
    id: record.id,
    name: record.name,
    prefix: record.prefix,
    scopes: record.scopes as S.TokenResource['scopes'],
    ...(record.virtualMachines && { virtualMachines: record.virtualMachines }),
    createdAt: iso(record.createdAt),
    ...(record.expiresAt !== undefined && { expiresAt: iso(record.expiresAt) }),
    ...(record.lastUsedAt !== undefined && { lastUsedAt: iso(record.lastUsedAt) }),
  };
}

export function consoleResource(record: ConsoleRecord, now: number): S.ConsoleResource {
  return {
    virtualMachine: record.virtualMachine,
    enabled: record.enabled,
    sshPublicKey: { keyData: record.keyData },
    keyFingerprint: record.keyFingerprint,
    expiration: iso(record.expiration),
    virtualMachineAccessId: record.accessId,
    provisioningState: 'Succeeded',
    detailedStatus: detailedStatus(record, now),
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
    ...sharingOf(record),
  };
}

/** A console as the audit trail records it: never the key itself, its fingerprint. */
export function consoleSummary(record: ConsoleRecord, created: boolean): Record<string, unknown> {
  return { enabled: record.enabled, keyFingerprint: record.keyFingerprint, expiration: iso(record.expiration), virtualMachineAccessId: record.accessId, ...sharingOf(record), created };
}

export function vmResource(vm: VmConsole, record: ConsoleRecord | undefined, now: number): S.VirtualMachineResource {
  return {
    name: vm.name,
    powerState: vm.powerState,
    consoleTypes: vm.consoleTypes,
    powerActions: vm.powerActions,
    serialBreak: vm.serialBreak,
    source: vm.source,
    ...(vm.agent !== undefined && { agent: vm.agent }),
    ...(record && { console: consoleResource(record, now) }),
  };
}

export function sessionResource(session: LiveSession, requestedBy?: string): S.SessionResource {
  return {
    id: session.id,
    virtualMachine: session.virtualMachine,
    kind: session.kind,
    path: session.path,
    endpoint: session.endpoint,
    remoteAddress: session.remoteAddress,
    startedAt: iso(session.startedAt),
    bytesIn: session.bytesIn,
    bytesOut: session.bytesOut,
    role: session.role ?? 'controller',
    ...(requestedBy && { controlRequestedBy: requestedBy }),
  };
}
