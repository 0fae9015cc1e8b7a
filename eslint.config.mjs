import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/*
 * The import layering of ARCHITECTURE.md as lint rules (each message says the rule), so a bad
 * import fails `npm run lint` at the line that makes it.
 */
const NODE_BUILTINS = builtinModules.map((name) => name.replace(/[/.]/g, '\\$&')).join('|');
/** One layer: its files, and what they may not import (regexes over the import specifier, each with the rule in words). */
const layer = (files, restrictions, ignores = []) => ({
  files,
  ignores: ['**/*.test.ts', ...ignores],
  rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: restrictions.map(([regex, message, extra = {}]) => ({ regex, message, ...extra })) }] },
});
const DESKTOP = ['(^|/)(main|preload|renderer)/|^electron$', 'relay imports nothing from the desktop'];
const SESSION_SIDE = ['relay/src/ssh/**/*.ts', 'relay/src/vnc/**/*.ts', 'relay/src/api/**/*.ts', 'relay/src/metrics/**/*.ts'];
const LAYERS = [
  layer(['relay/src/core/**/*.ts'], [['^(?!\\./|node:crypto$|ipaddr\\.js$)', 'relay/src/core is the pure core: no I/O modules, no adapters (only other core files, node:crypto and ipaddr.js)'], DESKTOP]),
  layer(['relay/src/**/*.ts'], [DESKTOP], ['relay/src/core/**', ...SESSION_SIDE]),
  // Sessions reach consoles only through sessions/console-seam.ts, so that a remote console (an agent) needs no change here.
  layer(SESSION_SIDE, [DESKTOP, ['(^|/)backends/', 'the SSH, VNC, API and metrics code reaches VMs only through sessions/console-seam.ts, never backends/ (the local implementation)']]),
  layer(['main/**/*.ts'], [
    ['(^|/)relay/(src|dist)/|^@lifeline/relay/(?!client$)', "main uses the relay's exported client API (@lifeline/relay/client), never its internals"],
    ['(^|/)renderer/', 'main may not import the renderer'],
  ]),
  layer(['preload/**/*.ts'], [['^(?!electron$|\\./contract\\.js$)', "preload imports only preload/contract.ts and electron's contextBridge/ipcRenderer"]]),
  layer(['renderer/src/**/*.ts'], [
    [`^(node:.*|${NODE_BUILTINS}|electron|ssh2|keytar)(/.*)?$`, 'renderer runs without Node, ssh2 or secrets'],
    ['(^|/)(main|relay)/', 'renderer imports only renderer files and, type-only, preload/contract.ts'],
    ['(^|/)preload/(?!contract\\.js$)', 'renderer imports only renderer files and, type-only, preload/contract.ts'],
    ['(^|/)preload/contract\\.js$', 'renderer imports preload/contract.ts type-only', { allowTypeImports: true }],
  ]),
];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'dist-desktop/**', 'release/**', 'docs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', Buffer: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly', fetch: 'readonly' } },
    rules: {
      'no-console': ['error', { allow: ['error'] }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['renderer/src/**/*.ts'],
    languageOptions: { globals: { document: 'readonly', window: 'readonly', location: 'readonly', navigator: 'readonly', WebSocket: 'readonly', ResizeObserver: 'readonly', requestAnimationFrame: 'readonly', Blob: 'readonly', TextEncoder: 'readonly', setInterval: 'readonly', HTMLElement: 'readonly' } },
  },
  {
    files: ['relay/assets/**/*.js'],
    languageOptions: { globals: { document: 'readonly', location: 'readonly', history: 'readonly', window: 'readonly', WebSocket: 'readonly', URLSearchParams: 'readonly' } },
  },
  ...LAYERS,
  {
    // No import cycles in shipped code (a cycle is a layering the code does not say out loud).
    files: ['relay/src/**/*.ts', 'main/**/*.ts', 'preload/**/*.ts', 'renderer/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    plugins: { 'import-x': importX },
    settings: { ...importX.flatConfigs.typescript.settings, 'import-x/resolver-next': [createTypeScriptImportResolver()] },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // A source file says one thing: past 300 lines it is split, or says in a comment why not.
      'max-lines': ['error', { max: 300 }],
    },
  },
  {
    files: ['test/**/*.ts', '**/*.test.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
