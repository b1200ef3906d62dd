import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The OpenStack tier's rolling maintenance (npm run test:openstack runs it after the tier's files):
// its own small cloud, up before and down after, so that restarting every nova-compute and moving
// every server does not meet the other files' expectations of s1..s5 (nor theirs it).
export default defineConfig({
  root: fileURLToPath(new URL('../../..', import.meta.url)),
  test: {
    include: ['test/openstack/rolling/**/*.spec.ts'],
    testTimeout: 900_000,
    hookTimeout: 900_000,
    globalSetup: ['test/openstack/cloud.setup.ts'],
  },
});
