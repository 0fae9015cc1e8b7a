import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
  {
    files: ['test/**/*.ts', '**/*.test.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
