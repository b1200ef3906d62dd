/**
 * Cold migration on the real testbed: a live migration that cannot finish in time (a 1 MiB/s
 * bandwidth cap, a 3 s deadline) is aborted, the guest stays on its source, then it is shut
 * down, its disk copied with checksums, and started on the destination; the source keeps
 * nothing of it. The other guests are pinned and must not be touched.
 */
import { describe, expect, it } from 'vitest';
import { planWith, reportOf, run, ssh, useTestbed } from './helpers.ts';

describe('cold migration on the testbed', () => {
  useTestbed();

  it('aborts a live migration at its deadline, then moves the guest cold with its disk intact', async () => {
    const file = planWith('testbed-cold', (plan) => {
      plan.placement.pinned = ['g2', 'g3'];
      plan.migration = { ...plan.migration, bandwidth_mibps: 1, completion_timeout_s_per_gib: 3, cold: { allow: ['g1'], shutdown_timeout_s: 30 } };
    });
    const disk = '/var/lib/libvirt/images/g1.qcow2';
    const before = (await ssh('hv1', 'sha256sum', disk)).stdout.split(' ')[0];

    const r = await run(file);
    // g2 and g3 are pinned, so hv1 is not empty: exit 3, as documented.
    expect(r.exitCode, r.stdout + r.stderr).toBe(3);

    const g1 = reportOf('testbed-cold').vms.find((v: { vm: string }) => v.vm === 'g1');
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
