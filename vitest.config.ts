import { defineConfig } from 'vitest/config';

// `npm test`: the fast suite. `npm run test:integration`: the suites under test/integration,
// which need root and the Debian packages .ci/run installs (they build a real libvirt testbed).
// `npm run test:openstack`: the slow suite against a real Nova (npm run cloud), root too.
const suite = process.env.EVAC_OPENSTACK === '1' ? 'openstack' : process.env.EVAC_INTEGRATION === '1' ? 'integration' : 'fast';

export default defineConfig({
  test: {
    include: suite === 'fast' ? ['test/**/*.test.ts'] : [`test/${suite}/**/*.test.ts`],
    exclude: suite === 'fast' ? ['test/integration/**', 'test/openstack/**', 'node_modules/**'] : [],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // One testbed (or cloud) on the machine at a time.
    fileParallelism: suite === 'fast',
    // The fast suite's own TMPDIR, checked empty at the end (test/global-setup.ts); the OpenStack
    // files share one cloud, up before the first and down after the last.
    globalSetup: suite === 'fast' ? ['test/global-setup.ts'] : suite === 'openstack' ? ['test/openstack/cloud.setup.ts'] : [],
  },
});
