/**
 * Cold migration on the real testbed: a live migration that cannot finish in time (a 1 MiB/s
 * bandwidth cap, a 3 s deadline) is aborted, the guest stays on its source, then it is shut
 * down, its disk copied with checksums, and started on the destination; the source keeps
 * nothing of it. The other guests are pinned and must not be touched.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { $ } from 'zx';
import { DIR, paths } from '../../scripts/testbed/layout.ts';

$.verbose = false;
const ssh = (host: string, ...cmd: string[]) => $`ssh -F ${paths.sshConfig} ${host} ${cmd}`;

describe('cold migration on the testbed', () => {
  beforeAll(async () => {
    await $`npx tsx scripts/testbed/cli.ts up 3`;
  });
  afterAll(async () => {
    await $`npx tsx scripts/testbed/cli.ts down`.nothrow();
  });

  it('aborts a live migration at its deadline, then moves the guest cold with its disk intact', async () => {
    const plan = parse(readFileSync('plans/testbed.yaml', 'utf8'));
    plan.name = 'testbed-cold';
    plan.placement.pinned = ['g2', 'g3'];
    plan.migration = { ...plan.migration, bandwidth_mibps: 1, completion_timeout_s_per_gib: 3, cold: { allow: ['g1'], shutdown_timeout_s: 30 } };
    const file = `${DIR}/cold.yaml`;
    writeFileSync(file, stringify(plan));
    const disk = '/var/lib/libvirt/images/g1.qcow2';
    const before = (await ssh('hv1', 'sha256sum', disk)).stdout.split(' ')[0];

    const run = await $`node scripts/bin.mjs run ${file} --reports ${DIR}/reports`.nothrow();
    // g2 and g3 are pinned, so hv1 is not empty: exit 3, as documented.
    expect(run.exitCode, run.stdout + run.stderr).toBe(3);

    const report = JSON.parse(readFileSync(`${DIR}/reports/testbed-cold.json`, 'utf8'));
    const g1 = report.vms.find((v: { vm: string }) => v.vm === 'g1');
    expect(g1.status).toBe('moved');
    expect(g1.method).toBe('cold');
    expect(g1.attempts.map((a: { method: string; outcome: string }) => [a.method, a.outcome])).toEqual([['live', 'timeout'], ['cold', 'ok']]);
    const dest = g1.host as string;
    expect(['hv2', 'hv3']).toContain(dest);
    expect((await ssh(dest, 'virsh', 'domstate', 'g1')).stdout.trim()).toBe('running');
    expect((await ssh(dest, 'sha256sum', disk)).stdout.split(' ')[0]).toBe(before);
    // Gone from the source, disk included; the pinned guests still run there.
    expect((await ssh('hv1', 'virsh', 'list', '--all', '--name')).stdout.split('\n').filter(Boolean).sort()).toEqual(['g2', 'g3']);
    expect((await ssh('hv1', 'ls', '/var/lib/libvirt/images')).stdout.split('\n').filter(Boolean).sort()).toEqual(['g2.qcow2', 'g3.qcow2']);
  });
});
