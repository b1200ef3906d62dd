/**
 * A rebalance on the real testbed: hv1 holds all three guests; with a memory ceiling set just
 * under hv1's use, the cheapest move (the smallest guest) goes live to hv2 or hv3, every host ends
 * under the ceiling, no host was ever past its capacity (replayed from the journal), and the
 * report shows each host before, as planned and after.
 */
import { describe, expect, it } from 'vitest';
import { LibvirtDriver } from '../../scripts/fleet/libvirt/driver.ts';
import { paths } from '../testbed/layout.ts';
import { GUESTS } from '../testbed/testbed.ts';
import { readJournal } from '../../scripts/runner/journal.ts';
import { overfills } from '../helpers.ts';
import { DIR } from '../testbed/layout.ts';
import { lastTick, planWith, reportOf, run, ssh, useTestbed } from './helpers.ts';

describe('rebalance on the testbed', () => {
  useTestbed();

  it('moves the fewest bytes that bring every host under the ceiling, in an order that never overfills a host', async () => {
    const driver = new LibvirtDriver({
      hosts: [{ name: 'hv1', address: '10.251.7.11' }, { name: 'hv2', address: '10.251.7.12' }, { name: 'hv3', address: '10.251.7.13' }],
      known_hosts: paths.knownHosts, identity_files: [paths.controllerKey],
    });
    const got = await driver.inventory();
    await driver.close();
    if (!got.ok) throw new Error(got.detail);
    const capacity = got.inventory.hosts.find((h) => h.name === 'hv1')!.capacity.memory_mib;
    const used = GUESTS.reduce((n, g) => n + g.memoryMib, 0);
    // hv1 must give up at least 90 MiB: the 96 MiB guest is the cheapest that covers it.
    const ceiling = (used - 90) / capacity;
    const file = planWith('rebalance-tb', (plan) => {
      delete plan.sources;
      plan.kind = 'rebalance';
      plan.destinations = { hosts: ['hv1', 'hv2', 'hv3'] };
      plan.rebalance = { target: { max_utilization: { memory_mib: ceiling } } };
    });
    const smallest = GUESTS.reduce((a, b) => (a.memoryMib <= b.memoryMib ? a : b)).name;
    const before = await lastTick('hv1', smallest);

    const r = await run(file);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const report = reportOf('rebalance-tb');
    expect(report.vms.map((v: { vm: string; status: string; method: string }) => [v.vm, v.status, v.method])).toEqual([[smallest, 'moved', 'live']]);
    expect(report.rebalance.reached).toBe(true);
    for (const h of report.rebalance.hosts) expect(h.after.memory_mib).toBeLessThanOrEqual(ceiling);
    expect(report.rebalance.hosts.find((h: { host: string }) => h.host === 'hv1').before.memory_mib).toBeGreaterThan(ceiling);
    const to = report.vms[0].host as string;
    expect(['hv2', 'hv3']).toContain(to);
    expect((await ssh(to, 'virsh', 'domstate', smallest)).stdout.trim()).toBe('running');
    expect((await ssh('hv1', 'virsh', 'list', '--all', '--name')).stdout.split('\n').filter(Boolean).sort()).toEqual(GUESTS.map((g) => g.name).filter((n) => n !== smallest));
    expect(await lastTick(to, smallest)).toBeGreaterThan(before);
    const lines = readJournal(`${DIR}/reports/rebalance-tb.journal.jsonl`);
    expect(overfills(lines, { overcommit: { vcpu: 4, memory_mib: 1, disk_gib: 1 }, reserve: { memory_mib: 256 } })).toEqual([]);
  });
});
