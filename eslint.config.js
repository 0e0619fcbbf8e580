// Lint is also where the architecture is enforced: `no-restricted-imports` makes "shared does
// no I/O", "only sodium.ts touches libsodium" and "the server only relays" facts, not hopes.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import globals from 'globals';

const NODE_BUILTINS = {
  group: ['node:*'],
  message: 'shared/ and client/ run in the browser: no Node built-ins.',
};
const SERVER_ONLY_LIBS = {
  group: ['ws', 'express', 'helmet', 'pino', 'redis', '@redis/*'],
  message: 'shared/ and client/ do no I/O of this kind.',
};
const LIBSODIUM = {
  group: ['libsodium-wrappers', 'libsodium-wrappers-sumo'],
  message: 'Only shared/src/crypto/sodium.ts imports libsodium; use the primitive interface.',
};
// Everything that can decrypt (or derive keys that can). The relay must never import any of it.
const DECRYPTION = {
  group: [
    '@passage/shared/crypto/*',
    '**/shared/src/crypto/*',
    'libsodium-wrappers',
    'libsodium-wrappers-sumo',
    '@noble/ciphers',
    '@noble/ciphers/*',
    '@noble/post-quantum',
    '@noble/post-quantum/*',
  ],
  message: 'The server relays ciphertext and never imports decryption code.',
};

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'bench-results/**',
      'coverage/**',
      'client/vite.config.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: ['*.js'],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { 'import-x': importX },
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      'import-x/no-cycle': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['*.js'],
    languageOptions: { globals: globals.node },
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['shared/src/**/*.ts'],
    ignores: ['shared/src/**/*.test.ts', 'shared/src/crypto/sodium.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [NODE_BUILTINS, SERVER_ONLY_LIBS, LIBSODIUM] },
      ],
    },
  },
  {
    files: ['shared/src/crypto/sodium.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [NODE_BUILTINS, SERVER_ONLY_LIBS] }],
    },
  },
  {
    files: ['client/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [NODE_BUILTINS, SERVER_ONLY_LIBS, LIBSODIUM] },
      ],
    },
  },
  {
    files: ['server/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [DECRYPTION] }],
    },
  },
  {
    // Unit tests are excluded from the package builds, so the project service (which picks the
    // nearest tsconfig.json) cannot see them; they are typed by tsconfig.tests.json instead.
    files: [
      'shared/src/**/*.test.ts',
      'server/src/**/*.test.ts',
      'server/src/**/*.contract.ts',
      'testing/src/**/*.test.ts',
    ],
    languageOptions: {
      parserOptions: {
        projectService: false,
        project: './tsconfig.tests.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  {
    // Tests may use Node and jest freely, but test code, too, stays honest about types.
    files: ['**/*.test.ts', 'test/src/**/*.ts', 'testing/src/**/*.ts', 'bench/src/**/*.ts'],
    languageOptions: { globals: globals.node },
  },
);
