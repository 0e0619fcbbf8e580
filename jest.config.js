// Jest runs the TypeScript sources directly (the `source` export condition) as native ES
// modules, transformed by swc. Four projects:
//  - unit: tests beside the code in shared/, server/, cli/ and testing/ (no external processes except
//    where a test starts its own redis-server), and lint/ (the import boundaries, on planted files);
//  - integration: test/, which starts real relays and redis-servers on free ports;
//  - soak: test/**/*.soak.test.ts, the bounded fault soak (over a minute), run on its own by
//    `npm run test:soak`;
//  - vectors: the Wycheproof suite, run on its own by `npm run test:vectors` (npm test selects
//    unit and integration only).
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript' },
      target: 'es2022',
    },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];

const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  // NodeNext sources import './x.js'; point those at the .ts file.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
  testEnvironmentOptions: { customExportConditions: ['source', 'node'] },
  modulePathIgnorePatterns: ['<rootDir>/.*/dist/'],
};

export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: [
        '<rootDir>/shared/src/**/*.test.ts',
        '<rootDir>/server/src/**/*.test.ts',
        '<rootDir>/cli/src/**/*.test.ts',
        '<rootDir>/testing/src/**/*.test.ts',
        '<rootDir>/client/src/**/*.test.ts',
        '<rootDir>/lint/**/*.test.ts',
      ],
      testPathIgnorePatterns: ['\\.vectors\\.test\\.ts$'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/src/**/*.test.ts'],
      testPathIgnorePatterns: ['\\.soak\\.test\\.ts$'],
    },
    {
      ...common,
      displayName: 'soak',
      testMatch: ['<rootDir>/test/src/**/*.soak.test.ts'],
    },
    {
      ...common,
      displayName: 'vectors',
      testMatch: ['<rootDir>/shared/src/**/*.vectors.test.ts'],
    },
  ],
};
