/** The scale test's cloud (vitest globalSetup): 6 computes, 200 servers (cmp1 and cmp2 65 each), up before and down after. */
import { $ } from 'zx';

$.verbose = false;

export async function setup(): Promise<void> {
  await $`npx tsx test/cloud/cli.ts up --computes 6 --servers 200`;
}

export async function teardown(): Promise<void> {
  await $`npx tsx test/cloud/cli.ts down`.nothrow();
}
