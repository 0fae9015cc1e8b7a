import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RelayView, ThemeSetting } from '../../preload/contract.js';

/** A relay the app knows: what the UI sees of it, minus its live status. Nothing secret: the token is in the keychain. */
export type RelayRecord = Omit<RelayView, 'status' | 'error' | 'token' | 'allowed'>;

export interface Settings {
  relays: RelayRecord[];
  autoRenew: boolean;
  theme: ThemeSetting;
}

const THEMES: readonly ThemeSetting[] = ['system', 'light', 'dark'];

const DEFAULTS: Settings = { relays: [], autoRenew: true, theme: 'system' };

function readSettings(path: string): Settings {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<Settings>;
    const theme = THEMES.includes(parsed.theme as ThemeSetting) ? (parsed.theme as ThemeSetting) : 'system';
    return { relays: Array.isArray(parsed.relays) ? parsed.relays : [], autoRenew: parsed.autoRenew !== false, theme };
  } catch {
    return structuredClone(DEFAULTS);
  }
}

/** Which version of the file was read: another process (the `lifeline` CLI, the app) replaces it by rename. */
function stampOf(path: string): string {
  const stat = statSync(path, { throwIfNoEntry: false });
  return stat ? `${stat.ino}:${stat.mtimeMs}:${stat.size}` : 'none';
}

/**
 * The app's non-secret settings, one JSON file in the data folder, written atomically. The desktop
 * and the `lifeline` CLI share it: a change written by the other is read on the next `get`, and an
 * update applies to the file as it is now.
 */
export class SettingsFile {
  private value: Settings;
  private stamp: string;

  constructor(private readonly path: string) {
    this.stamp = stampOf(path);
    this.value = readSettings(path);
  }

  private fresh(): Settings {
    const stamp = stampOf(this.path);
    if (stamp !== this.stamp) {
      this.stamp = stamp;
      this.value = readSettings(this.path);
    }
    return this.value;
  }

  get(): Settings {
    return structuredClone(this.fresh());
  }

  update(change: (settings: Settings) => void): Settings {
    const next = structuredClone(this.fresh());
    change(next);
    mkdirSync(dirname(this.path), { recursive: true });
    const temporary = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(next, null, 2), { mode: 0o600 });
    renameSync(temporary, this.path);
    this.value = next;
    this.stamp = stampOf(this.path);
    return this.get();
  }
}
