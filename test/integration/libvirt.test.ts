/**
 * The libvirt driver against the real testbed: inventory over SSH with strict host keys, and
 * plans/testbed.yaml run through the CLI: three guests live-migrated off hv1 onto hv2 and hv3
 * with concurrency 2, none rebooted, hv1 left with no domain and no disk.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { $, sleep } from 'zx';
import { LibvirtDriver } from '../../scripts/fleet/libvirt/driver.ts';
import { reportProblems } from '../../scripts/report/schema.ts';
import type { LibvirtFleet } from '../../scripts/plan/plan-types.ts';
import { domainXml } from '../testbed/guest.ts';
import { DIR, paths } from '../testbed/layout.ts';
import { GUESTS } from '../testbed/testbed.ts';
import { lastTick, planWith, run, ssh, useTestbed } from './helpers.ts';

const hosts: LibvirtFleet['hosts'] = [{ name: 'hv1', address: '10.251.7.11' }, { name: 'hv2', address: '10.251.7.12' }, { name: 'hv3', address: '10.251.7.13' }];
const config: LibvirtFleet = { hosts, known_hosts: paths.knownHosts, identity_files: [paths.controllerKey], connect_timeout_s: 5 };

describe('the libvirt driver on the testbed', () => {
  useTestbed();

  it('reads every host and domain over SSH', async () => {
    const driver = new LibvirtDriver(config);
    const got = await driver.inventory();
    await driver.close();
    expect(got.ok).toBe(true);
    if (!got.ok) return;
    const inv = got.inventory;
    expect(inv.unreachable).toEqual([]);
    expect(inv.hosts.map((h) => h.name)).toEqual(['hv1', 'hv2', 'hv3']);
    expect(new Set(inv.hosts.map((h) => h.uuid)).size).toBe(3);
    for (const h of inv.hosts) {
      expect(h.hypervisor.type).toBe('QEMU');
      expect(h.hypervisor.libvirt).toMatch(/^\d+\.\d+\.\d+$/);
      expect(h.capacity.vcpu).toBeGreaterThan(0);
      expect(h.capacity.memory_mib).toBeGreaterThan(1024);
    }
    expect(inv.vms.map((v) => [v.name, v.host, v.state, v.resources.memory_mib, v.storage])).toEqual(
      GUESTS.map((g) => [g.name, 'hv1', 'running', g.memoryMib, 'local']),
    );
    for (const v of inv.vms) expect(v.resources.disk_gib).toBeCloseTo(16 / 1024, 6);
  });

  it('refuses a host whose key does not match known_hosts', async () => {
    // hv1's name with hv2's key: what a man in the middle would present.
    const lines = readFileSync(paths.knownHosts, 'utf8').trim().split('\n');
    const hv2Key = lines.find((l) => l.startsWith('hv2,'))!.split(' ').slice(1).join(' ');
    const forged = `${DIR}/forged_known_hosts`;
    writeFileSync(forged, `hv1,10.251.7.11 ${hv2Key}\n`);
    const driver = new LibvirtDriver({ ...config, hosts: [hosts[0]], known_hosts: forged });
    const got = await driver.inventory();
    await driver.close();
    expect(got.ok && got.inventory.unreachable.map((u) => u.host)).toEqual(['hv1']);
    expect(got.ok && got.inventory.hosts).toEqual([]);
  });

  it("asks the destination's libvirt whether it can provide the guest's CPU", async () => {
    // g9: defined, shut off, asking for a CPU model that QEMU's TCG here cannot provide.
    const xml = domainXml('g9', 96).replace('<devices>', "<cpu mode='custom' match='exact'><model>Skylake-Server</model></cpu>\n  <devices>");
    writeFileSync(`${DIR}/g9.xml`, xml);
    await ssh('hv1', 'virsh', 'define', `${DIR}/g9.xml`);
    try {
      const driver = new LibvirtDriver(config);
      const got = await driver.inventory();
      if (!got.ok) throw new Error(got.detail);
      const vms = got.inventory.vms.filter((v) => v.name === 'g1' || v.name === 'g9');
      const results = await driver.preflight(vms.map((vm) => ({ vm, destination: 'hv2' })));
      await driver.close();
      const cpu = (i: number) => results[i].find((c) => c.check === 'cpu')!;
      expect(vms.map((v) => v.name)).toEqual(['g1', 'g9']);
      expect(cpu(0)).toMatchObject({ ok: true, detail: expect.stringMatching(/libvirt on hv2: .*superset|identical/) });
      expect(cpu(1)).toMatchObject({ ok: false, detail: expect.stringMatching(/libvirt on hv2: .*incompatible/) });
    } finally {
      await ssh('hv1', 'virsh', 'undefine', 'g9');
    }
  });

  it('evacuates hv1 with plans/testbed.yaml: every guest live on hv2 or hv3, none rebooted, hv1 empty', async () => {
    await sleep(1500);
    const before = new Map(await Promise.all(GUESTS.map(async (g) => [g.name, await lastTick('hv1', g.name)] as const)));
    const evac = await $`node dist/evacuator.js run plans/testbed.yaml`.nothrow();
    expect(evac.exitCode, evac.stderr + evac.stdout).toBe(0);
    await sleep(1500);
    for (const g of GUESTS) {
      const where = await Promise.all(['hv2', 'hv3'].map(async (h) => ((await ssh(h, 'virsh', 'list', '--name')).stdout.split('\n').includes(g.name) ? h : undefined)));
      const on = where.filter(Boolean) as string[];
      expect(on, g.name).toHaveLength(1);
      // The tick counter went on: the guest was never restarted.
      expect(await lastTick(on[0], g.name)).toBeGreaterThan(before.get(g.name)!);
    }
    expect((await ssh('hv1', 'virsh', 'list', '--all', '--name')).stdout.trim()).toBe('');
    expect((await ssh('hv1', 'ls', '/var/lib/libvirt/images')).stdout.trim()).toBe('');
    const report = JSON.parse(readFileSync('reports/testbed-hv1.json', 'utf8'));
    expect(reportProblems(report)).toEqual([]);
    expect(report.vms.map((v: { vm: string; status: string; method: string }) => [v.vm, v.status, v.method])).toEqual(GUESTS.map((g) => [g.name, 'moved', 'live']));
    for (const v of report.vms) {
      expect(v.durationS).toBeGreaterThan(0);
      expect(v.downtimeMs).toBeGreaterThan(0);
    }
    expect(report.proofs).toEqual([expect.objectContaining({ host: 'hv1', empty: true })]);
    // hv1 stays fenced for the maintenance (a file on the host), hv2 and hv3 are released; clear lifts it.
    expect(JSON.parse((await ssh('hv1', 'cat', '/var/lib/evacuator/fence.json')).stdout)).toMatchObject({ plan: 'testbed-hv1', role: 'source' });
    for (const h of ['hv2', 'hv3']) expect((await ssh(h, 'ls', '/var/lib/evacuator')).stdout.trim()).toBe('');
    const cleared = await $`node dist/evacuator.js clear plans/testbed.yaml`.nothrow();
    expect(cleared.stdout).toMatch(/hv1: lifted the fence of plan 'testbed-hv1'/);
    expect((await ssh('hv1', 'ls', '/var/lib/evacuator')).stdout.trim()).toBe('');
  });

  it('brings them back to hv1 with post-copy, still without a reboot, leaving hv2 and hv3 without disks', async () => {
    const file = planWith('testbed-back', (plan) => {
      plan.sources = ['hv2', 'hv3'];
      plan.destinations = { hosts: ['hv1'] };
      plan.migration = { ...plan.migration, post_copy: true, concurrency: { total: 2, per_source: 1, per_destination: 2 } };
    });
    const before = new Map<string, number>();
    for (const h of ['hv2', 'hv3']) {
      for (const g of (await ssh(h, 'virsh', 'list', '--name')).stdout.split('\n').filter(Boolean)) before.set(g, await lastTick(h, g));
    }
    expect([...before.keys()].sort()).toEqual(GUESTS.map((g) => g.name));
    const r = await run(file);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    await sleep(1500);
    expect((await ssh('hv1', 'virsh', 'list', '--name')).stdout.split('\n').filter(Boolean).sort()).toEqual(GUESTS.map((g) => g.name));
    for (const g of GUESTS) expect(await lastTick('hv1', g.name)).toBeGreaterThan(before.get(g.name)!);
    for (const h of ['hv2', 'hv3']) expect((await ssh(h, 'ls', '/var/lib/libvirt/images')).stdout.trim()).toBe('');
  });
});
