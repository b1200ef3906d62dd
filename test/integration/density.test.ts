/**
 * libvirt at density: hv1 carries 50 tiny guests (`testbed up 3 --guests 50`: no kernel, a
 * halting boot sector, 16 MiB, read-only disks on a folder every host sees), and
 * evacuator empties it live onto hv2 and hv3. Every guest ends on exactly one destination,
 * running, hv1 holds no domain, the disks are the same files, and the journal agrees with the
 * fleet: one planned move and one moved result per guest, every migration ended, the run ended
 * with 0, and the report rebuilt from the journal equals the one the run wrote.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { readJournal } from '../../scripts/runner/journal.ts';
import { TINY_DISKS } from '../testbed/guest.ts';
import { DIR } from '../testbed/layout.ts';
import { tinyGuests } from '../testbed/testbed.ts';
import { planWith, reportOf, run, ssh, testbed } from './helpers.ts';

const COUNT = 50;
const names = tinyGuests(COUNT);
const list = async (host: string, all = true) => (await ssh(host, 'virsh', 'list', ...(all ? ['--all'] : []), '--name')).stdout.split('\n').filter(Boolean);

describe(`a host of ${COUNT} guests (testbed)`, () => {
  beforeAll(async () => {
    await testbed('up', '3', '--guests', String(COUNT));
  }, 300_000);
  afterAll(async () => {
    await testbed('down').nothrow();
  });

  it(`evacuates all ${COUNT} live: each runs on one destination, hv1 is empty, the disks are the same files, the journal agrees`, async () => {
    expect((await list('hv1', false)).sort()).toEqual([...names].sort());
    const inodes = (await $`stat -c %n:%i ${names.map((n) => `${TINY_DISKS}/${n}.img`)}`).stdout;
    const file = planWith('density', (p) => {
      p.migration = { ...p.migration, mode: 'live', concurrency: { total: 4, per_source: 4, per_destination: 2 } };
      // 50 one-vCPU guests onto two hosts of 2 cores: the default 4 vCPUs per core would hold 16.
      p.placement = { ...p.placement, overcommit: { vcpu: 32 } };
    });
    const t0 = Date.now();
    const r = await run(file, 420_000);
    if (process.env.EVAC_DEBUG_LOG) writeFileSync(process.env.EVAC_DEBUG_LOG, r.stdout + r.stderr);
    const wallS = (Date.now() - t0) / 1000;
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);

    const on = new Map<string, string[]>();
    for (const h of ['hv1', 'hv2', 'hv3']) for (const n of await list(h)) on.set(n, [...on.get(n) ?? [], h]);
    for (const n of names) {
      expect(on.get(n), n).toHaveLength(1);
      expect(['hv2', 'hv3'], n).toContain(on.get(n)![0]);
    }
    expect(await list('hv1')).toEqual([]);
    for (const h of ['hv2', 'hv3']) {
      const running = await list(h, false);
      expect(running.filter((n) => names.includes(n)).sort()).toEqual(names.filter((n) => on.get(n)![0] === h).sort());
    }
    // Shared storage: nothing copied, nothing deleted.
    expect((await $`stat -c %n:%i ${names.map((n) => `${TINY_DISKS}/${n}.img`)}`).stdout).toBe(inodes);

    const report = reportOf('density');
    expect(report.vms).toHaveLength(COUNT);
    for (const v of report.vms) expect([v.vm, v.status, v.method, v.host]).toEqual([v.vm, 'moved', 'live', on.get(v.vm)![0]]);
    expect(report.proofs).toEqual([expect.objectContaining({ host: 'hv1', empty: true })]);
    // Honest estimates: plan's estimate for each move against what it took on real libvirt (it was 0.1 s against 3-4 s before the fixed costs).
    expect(report.totals.estimates.compared).toBe(COUNT);
    console.log(`density: moves took ${report.totals.estimates.medianRatio}x their estimate (median of ${report.totals.estimates.compared})`);
    expect(report.totals.estimates.medianRatio).toBeGreaterThan(0.5);
    expect(report.totals.estimates.medianRatio).toBeLessThan(2);

    const lines = readJournal(`${DIR}/reports/density.journal.jsonl`) as unknown as { kind: string; [k: string]: any }[];
    const planned = lines.find((l) => l.kind === 'planned')!;
    expect(planned.moves.map((m: { vm: string }) => m.vm).sort()).toEqual([...names].sort());
    const starts = lines.filter((l) => l.kind === 'move-start');
    const ends = lines.filter((l) => l.kind === 'move-end');
    expect(starts.map((l) => l.vm).sort()).toEqual([...names].sort());
    expect(ends.map((l) => [l.vm, l.outcome]).sort()).toEqual([...names].sort().map((n) => [n, 'ok']));
    const done = lines.filter((l) => l.kind === 'vm-done');
    expect(done.map((l) => [l.result.vm, l.result.status, l.result.host]).sort()).toEqual([...names].sort().map((n) => [n, 'moved', on.get(n)![0]]));
    expect(lines.at(-1)).toMatchObject({ kind: 'run-end', exitCode: 0 });
    // The report rebuilt from the journal is the one the run wrote.
    const rebuilt = await $`node dist/evacuator.js report ${`${DIR}/reports/density.journal.jsonl`} --reports ${`${DIR}/rebuilt`}`.nothrow();
    expect(rebuilt.exitCode, rebuilt.stderr).toBe(0);
    expect(JSON.parse(readFileSync(`${DIR}/rebuilt/density.json`, 'utf8'))).toEqual(report);

    const firstStart = Math.min(...starts.map((l) => Date.parse(l.at)));
    const runStart = Date.parse(lines.find((l) => l.kind === 'run-start')!.at);
    console.log(`density: ${COUNT} guests off hv1 in ${wallS.toFixed(1)} s (process start to exit); first migration ${((firstStart - runStart) / 1000).toFixed(1)} s after the run's start; makespan ${report.totals.makespanS} s`);
  }, 600_000);
});
