/**
 * The OpenStack tier's one cloud (vitest globalSetup): brought up once before its files (about
 * 75-95 s) and taken down after them, so each file does not build its own. The files run one at
 * a time (fileParallelism: false) in either order: each leaves the cloud as its tests need it.
 */
import { $ } from 'zx';

$.verbose = false;

export async function setup(): Promise<void> {
  await $`npx tsx test/cloud/cli.ts up`;
}

export async function teardown(): Promise<void> {
  await $`npx tsx test/cloud/cli.ts down`.nothrow();
}
