/**
 * The import boundaries of `eslint.config.js`, proven on planted violations: each case writes a
 * small file at a layer's path inside the repository (so that the layer's globs apply to it),
 * lints it with the repository's own configuration through the ESLint class, and expects the
 * rule that guards the boundary to fire; its twin, the same file minus the violation, must lint
 * clean. Everything planted is removed afterwards.
 *
 * The planted files are linted without type information (the boundary rules need none, and a
 * type-aware program for files that no tsconfig lists would fail or be slow); only the rules
 * that guard boundaries run, so a clean twin is clean of those, not of style.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** One planted folder name per run, so that two runs in one tree do not remove each other's. */
const PLANTED = `__planted-${randomBytes(4).toString('hex')}__`;

/** The rules that guard the boundaries; the test runs only these. */
const BOUNDARY_RULES = new Set([
  'import-x/no-restricted-paths',
  'import-x/no-extraneous-dependencies',
  'import-x/no-nodejs-modules',
  'import-x/no-unresolved',
  'no-restricted-syntax',
  'no-restricted-imports',
]);

/** Folders this run created (the first missing ancestor of each planted file), to remove. */
const created = new Set<string>();

/** Writes `content` at `relativePath`; in both, `{p}` stands for the planted folder's name. */
function plant(relativePath: string, content: string): void {
  const file = path.join(ROOT, relativePath.replaceAll('{p}', PLANTED));
  // Remember the highest folder that does not exist yet, and the planted folder itself.
  let top = path.dirname(file);
  while (!existsSync(path.dirname(top))) top = path.dirname(top);
  if (!existsSync(top)) created.add(top);
  const at = file.indexOf(PLANTED);
  if (at >= 0) created.add(file.slice(0, at + PLANTED.length));
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content.replaceAll('{p}', PLANTED));
}

let eslint: ESLint;

/** The boundary findings for one planted file: rule ids, in order. */
async function findings(relativePath: string): Promise<string[]> {
  const file = path.join(ROOT, relativePath.replaceAll('{p}', PLANTED));
  const [result] = await eslint.lintFiles([file]);
  if (result === undefined) throw new Error(`ESLint returned no result for ${relativePath}`);
  const fatal = result.messages.filter((m) => m.fatal === true);
  if (fatal.length > 0) throw new Error(`cannot lint ${relativePath}: ${fatal[0]?.message}`);
  return result.messages.map((m) => m.ruleId ?? '(none)');
}

interface Case {
  /** What the violation is, as the test's name. */
  readonly name: string;
  /** The planted file that is linted; `{p}` is the planted folder. */
  readonly file: string;
  /** Its content with the violation. */
  readonly bad: string;
  /** The same file without it, which must lint clean. */
  readonly good: string;
  /** Every rule id expected to fire on `bad` (each at least once, no others). */
  readonly rules: readonly string[];
}

const RESTRICTED = 'import-x/no-restricted-paths';

const CASES: readonly Case[] = [
  {
    name: 'the server importing crypto dynamically',
    file: 'server/src/{p}/dynamic.ts',
    bad: "export const load = () => import('@passage/shared/crypto/backend');\n",
    good: "export const load = () => import('@passage/shared/protocol/limits');\n",
    rules: [RESTRICTED],
  },
  {
    name: 'the server importing crypto by its relative src path',
    file: 'server/src/{p}/src-path.ts',
    bad: "export * from '../../../shared/src/crypto/backend.js';\n",
    good: "export * from '../../../shared/src/protocol/limits.js';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'the server importing crypto by its built dist path',
    file: 'server/src/{p}/dist-path.ts',
    bad: "import '../../../shared/dist/crypto/{p}/target.js';\n",
    good: "import '../../../shared/dist/protocol/{p}/target.js';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'the server re-exporting a crypto type',
    file: 'server/src/{p}/type-only.ts',
    bad: "export type { Primitives } from '@passage/shared/crypto/primitives';\n",
    good: "export type { ErrorCode } from '@passage/shared/protocol/errors';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'the server importing the reserved shared/src/client layer',
    file: 'server/src/{p}/client-core.ts',
    bad: "import '@passage/shared/client/{p}/core';\n",
    good: "import '@passage/shared/protocol/{p}/core';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'a protocol file (which the server may import) importing crypto',
    file: 'shared/src/protocol/{p}/leaky.ts',
    bad: "export { loadPrimitives } from '../../crypto/backend.js';\n",
    good: "export { PROTOCOL_VERSION } from '../limits.js';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'the org layer (which the server may import) importing crypto',
    file: 'shared/src/org/{p}/leaky.ts',
    bad: "export { loadPrimitives } from '../../crypto/backend.js';\n",
    good: "export { PROFILE_FORMAT_VERSION } from '../limits.js';\n",
    rules: [RESTRICTED],
  },
  {
    name: "the server importing the page's profile verifier (crypto) instead of the org container",
    file: 'server/src/{p}/profile.ts',
    bad: "export { verifyOrgProfile } from '@passage/shared/crypto/org-profile';\n",
    good: "export { checkSignedProfile } from '@passage/shared/org/signed';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'the CLI importing the server',
    file: 'cli/src/{p}/server.ts',
    bad: "export { loadConfig } from '@passage/server/config';\n",
    good: "export { verifyOrgProfile } from '@passage/shared/crypto/org-profile';\n",
    rules: [RESTRICTED, 'import-x/no-extraneous-dependencies'],
  },
  {
    name: 'the CLI importing an internal module of the client core instead of its public API',
    file: 'cli/src/{p}/client-core.ts',
    bad: "import '@passage/shared/client/{p}/core';\n",
    good: "import '@passage/shared/client/index';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'a page importing an internal module of the client core instead of its public API',
    file: 'client/src/{p}/internal.ts',
    bad: "import '@passage/shared/client/{p}/core';\n",
    good: "import '@passage/shared/client/index';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'proof-of-work (which the server may import) importing crypto',
    file: 'shared/src/pow/{p}/hash.ts',
    bad: "export { sha256 } from '../../crypto/noble.js';\n",
    good: "export type { Sha256 } from '../../protocol/sha256.js';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'the server importing something other than protocol and pow from shared',
    file: 'server/src/{p}/pow.ts',
    bad: "export { utf8ToBytes } from '@passage/shared/crypto/noble';\n",
    good: "export { verifyPow } from '@passage/shared/pow/pow';\n",
    rules: [RESTRICTED],
  },
  {
    name: '@noble/hashes imported by a crypto file other than noble.ts',
    file: 'shared/src/crypto/{p}/hash.ts',
    bad: "export { sha256 } from '@noble/hashes/sha2.js';\n",
    good: "export { sha256 } from '../noble.js';\n",
    rules: [RESTRICTED],
  },
  {
    name: '@noble/hashes imported by the protocol',
    file: 'shared/src/protocol/{p}/hash.ts',
    bad: "export { sha256 } from '@noble/hashes/sha2.js';\n",
    good: "export type { Sha256 } from '../sha256.js';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'libsodium imported by a crypto file other than sodium.ts',
    file: 'shared/src/crypto/{p}/sodium-again.ts',
    bad: "import sodium from 'libsodium-wrappers-sumo';\nexport default sodium;\n",
    good: "export { loadSodiumBackend } from '../sodium.js';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'the server importing libsodium',
    file: 'server/src/{p}/sodium.ts',
    bad: "export const load = () => import('libsodium-wrappers-sumo');\n",
    good: "export const load = () => import('ws');\n",
    rules: [RESTRICTED, 'import-x/no-extraneous-dependencies'],
  },
  {
    name: 'the server importing @noble/curves outside auth.ts',
    file: 'server/src/{p}/curves.ts',
    bad: "export { x25519 } from '@noble/curves/ed25519.js';\n",
    good: "export { z } from 'zod';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'the server importing a package that is installed but placed in no layer',
    file: 'server/src/{p}/new-package.ts',
    bad: "export { passage } from 'passage-planted-package';\n",
    good: "export { WebSocket } from 'ws';\n",
    rules: [RESTRICTED, 'import-x/no-extraneous-dependencies'],
  },
  {
    name: 'shared importing a package that is installed but placed in no layer',
    file: 'shared/src/protocol/{p}/new-package.ts',
    bad: "export const load = () => import('passage-planted-package');\n",
    good: "export const load = () => import('zod');\n",
    rules: [RESTRICTED, 'import-x/no-extraneous-dependencies'],
  },
  {
    name: 'an import that does not resolve',
    file: 'server/src/{p}/unresolved.ts',
    bad: "import 'passage-package-that-is-not-installed';\n",
    good: "import 'ws';\n",
    rules: ['import-x/no-unresolved'],
  },
  {
    name: 'a folder in shared that no layer places importing crypto',
    file: 'shared/src/{p}/unplaced.ts',
    bad: "export { loadPrimitives } from '../crypto/backend.js';\n",
    good: "export { PROTOCOL_VERSION } from '../protocol/limits.js';\n",
    rules: [RESTRICTED],
  },
  {
    name: 'the client importing the server by package name',
    file: 'client/src/{p}/server.ts',
    bad: "export { loadConfig } from '@passage/server/config';\n",
    good: "export { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';\n",
    rules: [RESTRICTED, 'import-x/no-extraneous-dependencies'],
  },
  {
    name: 'the client importing the server by its relative path',
    file: 'client/src/{p}/server-path.ts',
    bad: "export const load = () => import('../../../server/src/config.js');\n",
    good: "export const load = () => import('../../../shared/src/crypto/backend.js');\n",
    rules: [RESTRICTED],
  },
  {
    name: 'shared importing a Node built-in (statically and dynamically)',
    file: 'shared/src/protocol/{p}/node.ts',
    bad: "import 'node:fs';\nexport const load = () => import('node:net');\n",
    good: "import '../limits.js';\nexport const load = () => import('../errors.js');\n",
    rules: ['import-x/no-nodejs-modules'],
  },
  {
    name: 'the client importing a Node built-in',
    file: 'client/src/{p}/node.ts',
    bad: "import { readFileSync } from 'fs';\nexport { readFileSync };\n",
    good: "import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';\nexport { PROTOCOL_VERSION };\n",
    rules: ['import-x/no-nodejs-modules'],
  },
  {
    name: 'an import() whose specifier is computed',
    file: 'server/src/{p}/computed.ts',
    bad: "const name = 'libsodium-wrappers-sumo';\nexport const load = () => import(name);\n",
    good: "export const load = () => import('ws');\n",
    rules: ['no-restricted-syntax'],
  },
  {
    name: 'an import() whose specifier is a template literal',
    file: 'server/src/{p}/template.ts',
    bad: 'export const load = () => import(`@passage/shared/crypto/backend`);\n',
    good: "export const load = () => import('@passage/shared/protocol/limits');\n",
    rules: ['no-restricted-syntax'],
  },
  {
    name: 'createRequire, which loads what lint cannot see',
    file: 'server/src/{p}/require.ts',
    bad: "import { createRequire } from 'node:module';\nexport const req = createRequire('/');\n",
    good: "import { isBuiltin } from 'node:module';\nexport const builtin = isBuiltin('fs');\n",
    rules: ['no-restricted-imports'],
  },
];

beforeAll(() => {
  // Targets for the dist spellings and the reserved client layer, and an installed package
  // that no layer and no package.json lists.
  plant('shared/dist/crypto/{p}/target.js', 'export {};\n');
  plant('shared/dist/protocol/{p}/target.js', 'export {};\n');
  plant('shared/src/client/{p}/core.ts', 'export {};\n');
  plant('shared/src/protocol/{p}/core.ts', 'export {};\n');
  plant('shared/src/org/{p}/core.ts', 'export {};\n');
  plant(
    'node_modules/passage-planted-package/package.json',
    JSON.stringify({ name: 'passage-planted-package', type: 'module', main: 'index.js' }),
  );
  plant('node_modules/passage-planted-package/index.js', 'export const passage = 1;\n');
  eslint = new ESLint({
    cwd: ROOT,
    overrideConfig: [{ files: [`**/${PLANTED}/**`], ...tseslint.configs.disableTypeChecked }],
    ruleFilter: ({ ruleId }) => BOUNDARY_RULES.has(ruleId),
  });
});

afterAll(() => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
  rmSync(path.join(ROOT, 'node_modules/passage-planted-package'), { recursive: true, force: true });
});

describe('import boundaries', () => {
  for (const c of CASES) {
    it(`rejects ${c.name}`, async () => {
      plant(c.file, c.bad);
      const fired = await findings(c.file);
      expect([...new Set(fired)].sort()).toEqual([...c.rules].sort());
    });

    it(`accepts the same file without the violation (${c.name})`, async () => {
      plant(c.file, c.good);
      expect(await findings(c.file)).toEqual([]);
    });
  }

  it('flags the protocol file that imports crypto, not the server file that imports it', async () => {
    plant(
      'shared/src/protocol/{p}/relayed.ts',
      "export { loadPrimitives } from '../../crypto/backend.js';\n",
    );
    plant(
      'server/src/{p}/uses-relayed.ts',
      "export * from '@passage/shared/protocol/{p}/relayed';\n".replaceAll('{p}', PLANTED),
    );
    expect(await findings('shared/src/protocol/{p}/relayed.ts')).toEqual([RESTRICTED]);
    expect(await findings('server/src/{p}/uses-relayed.ts')).toEqual([]);
  });

  it('lints the real layer files clean, so the zones are not simply wrong everywhere', async () => {
    const results = await eslint.lintFiles([
      path.join(ROOT, 'shared/src/crypto/noble.ts'),
      path.join(ROOT, 'shared/src/crypto/sodium.ts'),
      path.join(ROOT, 'server/src/relay/auth.ts'),
      path.join(ROOT, 'server/src/relay/connection.ts'),
      path.join(ROOT, 'client/src/contact/main.tsx'),
    ]);
    expect(results.flatMap((r) => r.messages.map((m) => `${r.filePath}: ${m.message}`))).toEqual(
      [],
    );
  }, 60_000);
});
