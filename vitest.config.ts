import { defineConfig } from 'vitest/config';

// `npm test`: the fast suite. `npm run test:integration`: the suites under test/integration,
// which need root and the Debian packages .ci/run installs (they build a real libvirt testbed).
const integration = process.env.EVAC_INTEGRATION === '1';

export default defineConfig({
  test: {
    include: integration ? ['test/integration/**/*.test.ts'] : ['test/**/*.test.ts'],
    exclude: integration ? [] : ['test/integration/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // One testbed on the machine at a time.
    fileParallelism: !integration,
  },
});
