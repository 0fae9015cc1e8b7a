import type { LegalHold, RecordingLibrary, RecordingSummary } from './recording-library.js';

/**
 * The recordings the API serves (docs/recordings.md#api): on a standalone relay the ones on its
 * disk; on a fleet gateway those of every agent connected to it (fleet-recordings.ts).
 */
export interface RecordingCatalog {
  list(filter: { virtualMachine?: string; since?: number }): Promise<RecordingSummary[]>;
  get(id: string): Promise<RecordingSummary | undefined>;
  /** A segment's bytes for playback, or undefined for no such recording or segment. */
  segment(id: string, name: string): Promise<Buffer | undefined>;
  /** The hold now (null: taken off), or undefined for no such recording. */
  hold(id: string, hold: boolean, reason: string | undefined): Promise<LegalHold | null | undefined>;
  delete(id: string): Promise<'deleted' | 'held' | 'running' | 'gone'>;
}

/** The relay's own recordings directory as a catalog. */
export function localCatalog(library: RecordingLibrary, running: (id: string) => boolean): RecordingCatalog {
  return {
    list: async (filter) => library.list(filter),
    get: async (id) => library.get(id),
    segment: async (id, name) => library.segment(id, name),
    hold: async (id, hold, reason) => library.hold(id, hold, reason),
    delete: async (id) => library.delete(id, running),
  };
}
