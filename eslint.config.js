// typescript-eslint strict-type-checked; process.env only in config/ and the dev scripts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { boundaries } from './eslint.boundaries.js';

export default tseslint.config(
  {
    ignores: [
      'packages/client/src/generated/',
      '**/dist/',
      'node_modules/',
      'data/',
      '.test-data/',
      'scratch/',
      'db/',
      'packages/inbox/types/',
    ],
  },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // Fastify's plugin and handler contract is async functions, awaited by Fastify,
      // whether or not a given one awaits anything itself.
      '@typescript-eslint/require-await': 'off',
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Read settings through config/: one schema declares every setting.',
        },
      ],
    },
  },
  ...boundaries,
  {
    // Room sizes: a file over 450 lines or a function over 120 holds more than one concern.
    files: ['src/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 450 }],
      'max-lines-per-function': ['error', { max: 120 }],
    },
  },
  {
    // The one exception: a test file's describe() callback groups its cases and their shared
    // setup, so it is as long as the cases together; each case is its own function and the
    // file itself still stays under max-lines.
    files: ['src/**/*.test.ts'],
    rules: { 'max-lines-per-function': 'off' },
  },
  {
    files: [
      'src/config/**/*.ts',
      'src/main.ts',
      'scripts/**/*.ts',
      'test/**/*.ts',
      '**/*.test.ts',
      'bench/**/*.ts',
    ],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['test/**/*.ts', '**/*.test.ts'],
    rules: {
      // Test assertions read loosely typed JSON bodies; narrowing each would hide the intent.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // The inbox page's, the inbox element's and the console's plain browser JS are type-checked by
    // their own tsconfigs (lib DOM), which checks every name, as typescript-eslint's configs rely on
    // for TS files.
    files: ['src/query/inbox-page/**/*.js', 'packages/inbox/src/**/*.js', 'src/console/assets/**/*.js'],
    rules: { 'no-undef': 'off' },
  },
  { files: ['eslint.config.js', 'eslint.boundaries.js'], ...tseslint.configs.disableTypeChecked },
  // The benchmark's peers run on their own Node 22 with their own packages (bench/peers/package.json),
  // which Herald's type check cannot see: plain JavaScript, linted without types.
  { files: ['bench/peers/**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
