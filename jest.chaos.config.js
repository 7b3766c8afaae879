// `npm run test:chaos`: the chaos suite (test/chaos), never part of `npm test` — jest.config.js does not
// match test/chaos. It reuses the integration tests' global setup (one Temporal dev server, one workflow
// bundle); each kind's file runs side by side with its own moto, proxy, task queue and worker.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] };

module.exports = {
  // Most of a chaos run is waiting (heartbeat timeouts after a kill), so the kinds go side by side.
  maxWorkers: 5,
  projects: [
    {
      displayName: 'chaos',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/chaos/**/*.test.ts'],
      globalSetup: '<rootDir>/test/chaos/global-setup.ts',
      globalTeardown: '<rootDir>/test/chaos/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/chaos/timeout.ts'],
    },
  ],
};
