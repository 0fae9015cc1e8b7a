import type { SessionGrant } from '../core/console-rules.js';
import type { Logger } from '../logger.js';
import type { CloseReason, LiveSession } from '../sessions/live-session.js';
import type { SessionEvents } from '../sessions/session-supervisor.js';
import type { AuditTrail } from './audit-format.js';

/** Session opened/closed events for the audit trail: who (the key), which VM, how, why it ended, how much. Never console content. */
export function sessionAuditEvents(audit: AuditTrail, log: Logger): SessionEvents {
  const write = (event: { type: string } & Record<string, unknown>): void => {
    try {
      audit.append(event);
    } catch (error) {
      // A session is not cut because the trail cannot be written; the API refuses changes until it can.
      log.error({ err: (error as Error).message, event: event.type }, 'cannot write the audit trail');
    }
  };
  const describe = (session: LiveSession): Record<string, unknown> => ({
    session: session.id,
    virtualMachine: session.virtualMachine,
    kind: session.kind,
    path: session.path,
    endpoint: session.endpoint,
    remoteAddress: session.remoteAddress,
    ...(session.role && { role: session.role }),
  });
  return {
    opened(session: LiveSession, grant: SessionGrant | undefined) {
      write({
        type: 'session.opened',
        ...describe(session),
        // Over SSH the actor is the console key; over the WebSocket, the API token that minted the VNC token.
        ...(grant && { actor: grant.mintedBy ?? { virtualMachineAccessId: grant.accessId, keyFingerprint: grant.keyFingerprint } }),
      });
    },
    closed(session: LiveSession, reason: CloseReason) {
      write({
        type: 'session.closed',
        ...describe(session),
        reason: reason.code,
        message: reason.message,
        ...(reason.by && { by: reason.by }),
        bytesIn: session.bytesIn,
        bytesOut: session.bytesOut,
        durationMs: Date.now() - session.startedAt,
      });
    },
    note(type: string, details: Record<string, unknown>) {
      write({ type, ...details });
    },
  };
}
