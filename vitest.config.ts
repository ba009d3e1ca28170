import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file gets its own process (Dawn devices do not like sharing one across workers);
    // the CPU adapter is multi-threaded itself, so two files at a time is enough.
    pool: 'forks',
    maxWorkers: 2,
    // No test may depend on a timeout that a cold shader cache can hit: on lavapipe the first
    // dispatch of each pipeline compiles it (up to ~2 s each, several files compiling at once),
    // and CI runs with an empty cache. These limits only catch hangs.
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
