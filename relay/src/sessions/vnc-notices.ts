import { participantName } from './console-sharing.js';
import type { LiveSession } from './live-session.js';

type Notified = LiveSession & { notify?(line: string): void };

/**
 * Tells the viewers of a VM's screen who joined and who left, out of the RFB stream (the relay's
 * noVNC page shows these lines; a viewer that did not ask for notices hears nothing). The one who
 * joined hears who else is there.
 */
export function announceVncViewer(sessions: LiveSession[], session: LiveSession, what: 'joined' | 'left'): void {
  if (session.kind !== 'vnc') return;
  const others = sessions.filter((other) => other !== session && other.kind === 'vnc' && other.virtualMachine === session.virtualMachine) as Notified[];
  const role = session.role === 'observer' ? 'an observer' : 'the controller';
  const line = what === 'joined' ? `${participantName(session)} joined as ${role} (${others.length + 1} on this screen)` : `${participantName(session)} left (${others.length} on this screen)`;
  for (const other of others) other.notify?.(line);
  if (what === 'joined' && others.length > 0) {
    (session as Notified).notify?.(`also on this screen: ${others.map((other) => `${participantName(other)}, ${other.role === 'observer' ? 'observing' : 'in control'}`).join('; ')}`);
  }
}
