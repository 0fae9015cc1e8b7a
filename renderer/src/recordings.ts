import type { DesktopBridge, RecordingView, VmView } from '../../preload/contract.js';
import { button, element, modal } from './dom.js';
import { CastPlayer } from './cast-player.js';
import { RfbPlayer } from './rfb-player.js';
import type { ThemeController } from './theme.js';

/** The serial recording that overlaps `recording` (a VNC one) the most, if any. */
function overlapping(recording: RecordingView, all: RecordingView[]): RecordingView | undefined {
  const span = (r: RecordingView): [number, number] => [Date.parse(r.startedAt), r.endedAt ? Date.parse(r.endedAt) : Date.now()];
  const [start, end] = span(recording);
  let best: RecordingView | undefined;
  let bestOverlap = 0;
  for (const candidate of all) {
    if (candidate.kind !== 'serial') continue;
    const [from, to] = span(candidate);
    const overlap = Math.min(end, to) - Math.max(start, from);
    if (overlap > bestOverlap) {
      best = candidate;
      bestOverlap = overlap;
    }
  }
  return best;
}

/** The VM's recordings, each playable and exportable as .cast. */
export async function recordingsDialog(bridge: DesktopBridge, vm: VmView, theme: ThemeController, report: (error: Error) => void): Promise<void> {
  const recordings = await bridge.api.listRecordings(vm.relayId, vm.name);
  let player: CastPlayer | RfbPlayer | undefined;
  const unfollow = theme.onChange((next) => player?.setTheme(next));
  const { body } = modal(`Recordings of ${vm.name}`, {
    class: 'recordings',
    onClose: () => {
      unfollow();
      player?.dispose();
    },
  });
  const stage = element('div', { class: 'recording-stage' });
  const playSerial = async (recording: RecordingView): Promise<void> => {
    const text = await bridge.api.recordingCast(vm.relayId, recording.id);
    const cast = new CastPlayer(text, recording, theme.current);
    player?.dispose();
    player = cast;
    const download = button('Export .cast', () => {
      const link = element('a', { href: URL.createObjectURL(new Blob([text], { type: 'application/x-asciicast' })), download: `${vm.name}-${recording.startedAt.replace(/[:.]/g, '-')}.cast` });
      link.click();
      URL.revokeObjectURL(link.href);
    }, { icon: 'save' });
    stage.replaceChildren(element('div', { class: 'dialog-actions' }, download), cast.root);
  };
  const playScreen = async (recording: RecordingView): Promise<void> => {
    const loading = element('p', { role: 'status' }, 'Loading the screen recording…');
    stage.replaceChildren(loading);
    // The serial recording of the same VM that overlaps it most plays beside it, on the same timeline.
    const serial = overlapping(recording, recordings);
    const companion = serial && {
      text: await bridge.api.recordingCast(vm.relayId, serial.id),
      offset: (Date.parse(serial.startedAt) - Date.parse(recording.startedAt)) / 1000,
      title: `Serial console (recording of ${new Date(serial.startedAt).toLocaleTimeString()})`,
      theme: theme.current,
    };
    const screen = await RfbPlayer.load(
      recording,
      async (name) => Uint8Array.from(atob(await bridge.api.recordingSegment(vm.relayId, recording.id, name)), (c) => c.charCodeAt(0)),
      (done, total) => (loading.textContent = `Loading the screen recording: ${done} of ${total} segments…`),
      companion,
    );
    player?.dispose();
    player = screen;
    stage.replaceChildren(screen.root);
  };
  const play = async (recording: RecordingView): Promise<void> => {
    try {
      await (recording.kind === 'vnc' ? playScreen(recording) : playSerial(recording));
    } catch (error) {
      stage.replaceChildren();
      report(error as Error);
    }
  };
  const rows = recordings.map((recording) => {
    const what = recording.kind === 'vnc' ? 'screen' : 'serial';
    const when = new Date(recording.startedAt).toLocaleString();
    return element('li', { 'aria-label': `Recording of ${when} (${what})` },
      element('span', {}, when),
      element('span', { class: 'badge' }, recording.kind === 'vnc' ? 'VNC' : 'serial'),
      element('span', { class: `badge ${recording.complete ? 'ok' : 'warn'}` }, recording.complete ? 'sealed' : 'incomplete'),
      ...(recording.onHold ? [element('span', { class: 'badge warn' }, 'legal hold')] : []),
      element('small', {}, recording.participants.map((p) => `${p.role} ${p.remoteAddress}`).join(', ')),
      button('Play', () => play(recording), { icon: recording.kind === 'vnc' ? 'vnc' : 'serial', name: `Play the ${what} recording of ${when}` }),
    );
  });
  body.append(recordings.length > 0 ? element('ul', { class: 'recording-list' }, ...rows) : element('p', {}, `No recordings of ${vm.name}: the relay records sessions where its recording config or the console says so (docs/recordings.md).`), stage);
}
