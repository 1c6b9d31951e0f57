// Vitest settings: forks pool (native modules and tfjs are safest in separate processes), generous timeouts for compute tests,
// and the engine's numeric test files once more on every other backend that loads (test/backends.ts).
import { defineConfig } from 'vitest/config';
import { LOADED_BACKENDS, NUMERIC_TEST_FILES, ONCE_PER_RUN_FILES, testBackendName } from './test/backends.js';

// The whole suite runs on GRADLENS_TEST_BACKEND (cpu when unset); the numeric files also on each other backend.
const main = testBackendName();
const others = LOADED_BACKENDS.filter((b) => b !== main);
// GRADLENS_TEST_NUMERIC_DONE=1: an earlier pass of the same run already ran the numeric files on every backend that
// loads (.ci/run's native pass runs them on native, cpu and wasm); this pass (the pure-npm fallback) runs the rest of
// the suite, which is what changes when the addon cannot load: the service's own choice of backend, end to end
// (and leaves out the minutes-long files of ONCE_PER_RUN_FILES too).
const numericDone = process.env['GRADLENS_TEST_NUMERIC_DONE'] === '1';

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: main, include: ['test/**/*.test.ts'], exclude: numericDone ? [...NUMERIC_TEST_FILES, ...ONCE_PER_RUN_FILES] : [] } },
      ...(numericDone ? [] : others).map((backend) => ({
        extends: true as const,
        test: { name: `numeric:${backend}`, include: [...NUMERIC_TEST_FILES], env: { GRADLENS_TEST_BACKEND: backend } },
      })),
    ],
  },
});
