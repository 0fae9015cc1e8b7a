import type { RelayApi } from '../services/relay-api.js';
import { noticeMeaning, type NoticeMeaning } from '../services/sharing-notices.js';

const CHECK_MS = 5000;

/**
 * What a desktop VNC tab learns of its screen by asking the relay, since its SSH forward has no
 * room for the relay's notices (docs/sharing.md): that the screen is being recorded, and how many
 * viewers it has. Asked at once and every 5 s; a relay whose token lacks the `recordings` or
 * `sessions` scope tells nothing. Returns the stop function.
 */
export function watchVncScreen(api: () => Promise<RelayApi>, vm: string, emit: (meaning: NoticeMeaning) => void, intervalMs = CHECK_MS): () => void {
  let recorded: string | undefined;
  let viewers = '';
  let stopped = false;
  const check = async (): Promise<void> => {
    const relay = await api();
    const [recordings, sessions] = await Promise.all([relay.recordings(vm).catch(() => []), relay.sessions().catch(() => [])]);
    if (stopped) return;
    const running = recordings.find((recording) => recording.kind === 'vnc' && !recording.complete);
    if (running && running.id !== recorded) {
      const meaning = noticeMeaning(`[lifeline] this session is recorded (recording ${running.id.slice(0, 8)}; docs/recordings.md)`);
      if (meaning) emit(meaning);
    }
    recorded = running?.id;
    const screen = sessions.filter((session) => session.virtualMachine === vm && session.kind === 'vnc');
    const observing = screen.filter((session) => session.role === 'observer').length;
    const now = `${screen.length} on this screen (${observing} observing)`;
    if (now !== viewers && viewers !== '' && screen.length > 0) emit({ text: now });
    viewers = now;
  };
  const tick = (): void => void check().catch(() => undefined);
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
