import { defineConfig } from 'vitest/config';

/**
 * Two tiers. `unit`: no build, no Docker, no network, seconds (`npm run test:unit`).
 * `e2e`: the built CLI, the native addon, worker pools, real images through a Docker engine
 * and a loopback registry. `npm test` builds, then runs unit, then e2e.
 */
const UNIT = ['test/unit/**/*.test.ts', 'test/docker-dockerfile.test.ts'];

export default defineConfig({
  test: {
    reporters: ['default', './test/setup/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: UNIT,
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          exclude: UNIT,
          // Docker engine + a loopback registry for the Docker tests (stops what it started).
          globalSetup: ['test/setup/services.ts'],
          // Round trips on real trees and images take seconds, not milliseconds.
          testTimeout: 300_000,
          hookTimeout: 600_000,
          pool: 'forks',
          // No maxWorkers here: vitest 3 takes worker counts only from the root config and ignores a
          // project's, so e2e runs its default of cores - 1 forks (one on a two-core machine, whose
          // cores the engine's worker pool already uses).
        },
      },
    ],
  },
});
