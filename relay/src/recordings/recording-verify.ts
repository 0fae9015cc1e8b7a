import type { RecordingLibrary } from './recording-library.js';

/** The manifest hash each recording was sealed with, from the audit trail's lines (`recording.sealed` events). */
export function sealedManifests(trailLines: string[]): Map<string, string> {
  const sealed = new Map<string, string>();
  for (const line of trailLines) {
    if (!line.includes('"recording.sealed"')) continue;
    try {
      const event = JSON.parse(line) as { type?: string; recording?: string; manifestSha256?: string };
      if (event.type === 'recording.sealed' && event.recording && event.manifestSha256) sealed.set(event.recording, event.manifestSha256);
    } catch {
      // `audit verify` reports a broken line; here it seals nothing.
    }
  }
  return sealed;
}

/**
 * `lifeline-relay recordings verify`: every recording (or one) checked against its manifest and the
 * manifest against the audit trail's seal. One line per recording; a failing one names the file.
 */
export function verifyRecordings(library: RecordingLibrary, sealed: Map<string, string>, only?: string): { lines: string[]; ok: boolean } {
  const ids = only ? [only] : library.list().map((recording) => recording.id);
  const lines: string[] = [];
  let ok = true;
  for (const id of ids) {
    const recording = library.get(id);
    const outcome = library.verify(id, sealed.get(id));
    const what = recording ? `${recording.virtualMachine} ${recording.kind}, started ${recording.startedAt}` : 'unknown';
    if (outcome.ok) {
      lines.push(`ok ${id} (${what}${outcome.complete ? ', sealed' : ', incomplete: verified up to its last checkpoint'})`);
    } else {
      ok = false;
      lines.push(`FAILED ${id} (${what}): ${outcome.problems.join('; ')}`);
    }
  }
  if (ids.length === 0) lines.push('ok: no recordings');
  return { lines, ok };
}
