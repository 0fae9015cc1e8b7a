import type { ThemeSetting } from '../../preload/contract.js';

export type Theme = 'light' | 'dark';

/**
 * Light and dark themes: `system` follows the OS (prefers-color-scheme) and changes with it.
 * The resolved theme is `data-theme` on <html>; listeners (the terminals) are told of changes.
 */
export class ThemeController {
  private setting: ThemeSetting = 'system';
  private readonly query = matchMedia('(prefers-color-scheme: dark)');
  private readonly listeners = new Set<(theme: Theme) => void>();

  constructor() {
    this.query.addEventListener('change', () => this.apply());
  }

  get current(): Theme {
    return this.setting === 'system' ? (this.query.matches ? 'dark' : 'light') : this.setting;
  }

  get choice(): ThemeSetting {
    return this.setting;
  }

  set(setting: ThemeSetting): void {
    this.setting = setting;
    this.apply();
  }

  onChange(listener: (theme: Theme) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private apply(): void {
    document.documentElement.dataset.theme = this.current;
    document.documentElement.style.colorScheme = this.current;
    for (const listener of this.listeners) listener(this.current);
  }
}

/** xterm.js colours for each theme. */
export const TERMINAL_THEMES = {
  light: { background: '#ffffff', foreground: '#1f2328', cursor: '#1f2328', cursorAccent: '#ffffff', selectionBackground: '#b6d4fe' },
  dark: { background: '#0f1115', foreground: '#d6dae0', cursor: '#d6dae0', cursorAccent: '#0f1115', selectionBackground: '#264f78' },
} as const;
