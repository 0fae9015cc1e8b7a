import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
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

/** The app's non-secret settings, one JSON file in userData, written atomically. */
export class SettingsFile {
  private value: Settings;

  constructor(private readonly path: string) {
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<Settings>;
      const theme = THEMES.includes(parsed.theme as ThemeSetting) ? (parsed.theme as ThemeSetting) : 'system';
      this.value = { relays: Array.isArray(parsed.relays) ? parsed.relays : [], autoRenew: parsed.autoRenew !== false, theme };
    } catch {
      this.value = { relays: [], autoRenew: true, theme: 'system' };
    }
  }

  get(): Settings {
    return structuredClone(this.value);
  }

  update(change: (settings: Settings) => void): Settings {
    const next = structuredClone(this.value);
    change(next);
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileSync(`${this.path}.tmp`, JSON.stringify(next, null, 2), { mode: 0o600 });
    renameSync(`${this.path}.tmp`, this.path);
    this.value = next;
    return this.get();
  }
}
