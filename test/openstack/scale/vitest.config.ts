import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The OpenStack tier's scale test (npm run test:openstack runs it after the tier's files): its
// own cloud, 6 computes and 200 servers (test/cloud, Shape), up before and down after.
export default defineConfig({
  root: fileURLToPath(new URL('../../..', import.meta.url)),
  test: {
    include: ['test/openstack/scale/**/*.spec.ts'],
    testTimeout: 900_000,
    hookTimeout: 900_000,
    globalSetup: ['test/openstack/scale/cloud.setup.ts'],
  },
});
