// Vitest settings: forks pool (native modules and tfjs are safest in separate processes), generous timeouts for compute tests,
// and the engine's numeric test files once more on every other backend that loads (test/backends.ts).
import { defineConfig } from 'vitest/config';
import { LOADED_BACKENDS, NUMERIC_TEST_FILES, testBackendName } from './test/backends.js';

// The whole suite runs on GRADLENS_TEST_BACKEND (cpu when unset); the numeric files also on each other backend.
const main = testBackendName();
const others = LOADED_BACKENDS.filter((b) => b !== main);

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: main, include: ['test/**/*.test.ts'] } },
      ...others.map((backend) => ({
        extends: true as const,
        test: { name: `numeric:${backend}`, include: [...NUMERIC_TEST_FILES], env: { GRADLENS_TEST_BACKEND: backend } },
      })),
    ],
  },
});
