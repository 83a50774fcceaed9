import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Docker engine + a loopback registry for the Docker tests (stops what it started).
    globalSetup: ['test/setup/services.ts'],
    // Round trips on real trees and images take seconds, not milliseconds.
    testTimeout: 300_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // Two cores: the engine's worker pool already uses both.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default', './test/setup/summary-reporter.ts'],
  },
});
