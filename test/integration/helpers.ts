/** What the integration suites share: the testbed's command, SSH into its hosts, guest ticks, plans derived from plans/testbed.yaml. */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { parse, stringify } from 'yaml';
import { $ } from 'zx';
import { DIR, paths } from '../testbed/layout.ts';

$.verbose = false;

/** The testbed's own command (npm run testbed). */
export const testbed = (...args: string[]) => $`npx tsx test/testbed/cli.ts ${args}`;

/** A fresh 3-host testbed for the suite, torn down after it even when a test fails. */
export function useTestbed(): void {
  beforeAll(async () => {
    await testbed('up', '3');
  });
  afterAll(async () => {
    await testbed('down').nothrow();
  });
}

/** Run a command on a testbed host over SSH, with strict host-key checking. */
export const ssh = (host: string, ...cmd: string[]) => $`ssh -F ${paths.sshConfig} ${host} ${cmd}`;

/** The last tick a guest printed to its serial log on a host (0 if none). */
export async function lastTick(host: string, guest: string): Promise<number> {
  const log = (await ssh(host, 'cat', `/var/log/libvirt/qemu/${guest}.serial`)).stdout;
  return [...log.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])).at(-1) ?? 0;
}

/** A plan from plans/testbed.yaml with changes, written into the testbed folder; returns its path. */
export function planWith(name: string, change: (plan: Record<string, any>) => void): string {
  const plan = parse(readFileSync('plans/testbed.yaml', 'utf8'));
  plan.name = name;
  change(plan);
  const file = `${DIR}/${name}.yaml`;
  writeFileSync(file, stringify(plan));
  return file;
}

/**
 * evacuator run on a plan, reports into the testbed folder; never throws on a non-zero exit.
 * Each test is a maintenance window of its own: the fences the run leaves are lifted after it
 * (evacuator clear), so the next test's plan may use those hosts.
 */
export async function run(file: string, limitMs?: number) {
  // With a limit, a run that outlasts it gets SIGTERM (evacuator stops cleanly and prints what it did), so a
  // test sees the run's output instead of its own timeout.
  const out = await $({ ...(limitMs ? { timeout: limitMs, timeoutSignal: 'SIGTERM' as const } : {}) })`node dist/evacuator.js run ${file} --reports ${`${DIR}/reports`}`.nothrow();
  await $`node dist/evacuator.js clear ${file} --reports ${`${DIR}/reports`}`.nothrow();
  return out;
}

/** The JSON report a run wrote for the plan of that name. */
export function reportOf(name: string) {
  return JSON.parse(readFileSync(`${DIR}/reports/${name}.json`, 'utf8'));
}
