/**
 * concurrency: auto (the default): limits from the link model (streams that fill a host's NIC;
 * Nova's one per compute), explicit numbers used as given, a migration held back while sharing a
 * link would leave a guest dirtying faster than its share; and on simulated fleets the default
 * schedule within 1.05x of the link lower bound where the old fixed default (4 / 2 / 2) was not.
 */
import { describe, expect, it } from 'vitest';
import { openDriver } from '../scripts/fleet/open.ts';
import { simFleet } from '../scripts/fleet/sim/fleet.ts';
import type { Host } from '../scripts/fleet/types.ts';
import type { EvacuationPlan, SimVm } from '../scripts/plan/plan-types.ts';
import { evacuate } from '../scripts/runner/evacuate.ts';
import { converges, limitOn, Limits, linkValue, resolveLimits, shares, worthSharing } from '../scripts/runner/limits.ts';
import { seeded } from '../scripts/random.ts';
import { Learned } from '../scripts/runner/run.ts';
import { loadPlan } from '../scripts/plan/load.ts';
import { tempDir } from './helpers.ts';

const host = (name: string, nicMibps?: number): Host => ({ name, uuid: name, cpuModel: 'Icelake-Server', hypervisor: { type: 'QEMU', version: '8.2.0' }, capacity: {}, labels: {}, ...(nicMibps ? { nicMibps } : {}) });
const auto = { total: 'auto', perSource: 'auto', perDestination: 'auto' } as const;

describe('concurrency: auto', () => {
  it('derives streams per host from its NIC and the stream ceiling, the total from the sources; a driver cap and explicit numbers win', () => {
    const hosts = { sources: [host('s1'), host('s2', 2980), host('s3', 119)], destinations: [host('d1'), host('d2', 2980)] };
    const l = resolveLimits(auto, hosts, { streamMibps: 1000 });
    const per = (v: typeof l.perSource, h: string) => (typeof v === 'number' ? v : v(h));
    // 10 GbE (1190 MiB/s, the default): 2 streams; 25 GbE: 3; 1 GbE: 1.
    expect(['s1', 's2', 's3'].map((h) => per(l.perSource, h))).toEqual([2, 3, 1]);
    expect(['d1', 'd2'].map((h) => per(l.perDestination, h))).toEqual([2, 3]);
    expect(l.total).toBe(6);
    expect(l.describe).toMatch(/at most 6 at once \(auto\), per source auto \(1-3\), per destination auto \(2-3\)/);
    // Nova runs one outgoing live migration per compute.
    const nova = resolveLimits(auto, hosts, { perHostMigrations: 1 });
    expect(['s1', 's2', 's3'].map((h) => per(nova.perSource, h))).toEqual([1, 1, 1]);
    expect(nova.total).toBe(3);
    const fixed = resolveLimits({ total: 4, perSource: 2, perDestination: 'auto' }, hosts, {});
    expect([fixed.total, fixed.perSource]).toEqual([4, 2]);
    expect(fixed.links).toBeDefined();
    expect(resolveLimits({ total: 4, perSource: 2, perDestination: 2 }, hosts, {}).links).toBeUndefined();
  });

  it('holds back a migration while sharing its links would leave a guest dirtying faster than its share; one alone always starts', async () => {
    const hosts = { sources: [host('s1')], destinations: [host('d1'), host('d2')] };
    const limits = new Limits(resolveLimits(auto, hosts, { streamMibps: 1000 }));
    let release!: () => void;
    const tick = () => new Promise((r) => setTimeout(r, 0));
    const running = limits.run('s1', 'd1', () => new Promise<void>((r) => (release = r)), { dirtyMibps: 500 });
    await tick();
    // s1's 1190 MiB/s shared by two: 595 each; the guest in flight dirties 500 (x1.25 > 595).
    expect(limits.hasRoom('s1', 'd2', { dirtyMibps: 10 })).toBe(false);
    release();
    await running;
    const quiet = limits.run('s1', 'd1', () => new Promise<void>((r) => (release = r)), { dirtyMibps: 100 });
    await tick();
    expect(limits.hasRoom('s1', 'd2', { dirtyMibps: 100 })).toBe(true);
    expect(limits.hasRoom('s1', 'd2', { dirtyMibps: 600 })).toBe(false);
    release();
    await quiet;
    // A guest too hot to share a link still migrates, alone.
    expect(limits.hasRoom('s1', 'd2', { dirtyMibps: 5000 })).toBe(true);
  });

  it('on simulated fleets (25 GbE hosts, guests dirtying 350-550 MiB/s) the default is within 1.1x (1.2x with hot writers) the link lower bound and faster than the old fixed 4 / 2 / 2', async () => {
    const run = async (shape: 'fast-nics' | 'hot', concurrency?: { total: number; per_source: number; per_destination: number }) => {
      const fleet = simFleet({ seed: 5, generate: { hosts: 20, vms: 200 } });
      if (shape === 'fast-nics') for (const h of fleet.hosts) h.nic_mibps = 2980;
      else for (const [i, v] of fleet.vms.entries()) if (i % 2 === 0) v.dirty_mibps = 350 + (i % 200);
      const plan: EvacuationPlan = {
        version: 1, name: `conc-${shape}`, fleet: { driver: 'sim', sim: { hosts: fleet.hosts, vms: fleet.vms } },
        sources: ['hv-001', 'hv-002', 'hv-003'], migration: { mode: 'live', ...(concurrency ? { concurrency } : {}) },
      };
      const done = await evacuate({ file: '(test)', digest: '', plan, warnings: [] }, (o) => openDriver(plan, o), () => {}, { reportsDir: tempDir() });
      expect(done.report.totals.moved, shape).toBe(done.report.totals.vms);
      return done.report.totals;
    };
    for (const shape of ['fast-nics', 'hot'] as const) {
      const ours = await run(shape);
      const old = await run(shape, { total: 4, per_source: 2, per_destination: 2 });
      // 25 GbE: three streams fill a NIC, until a source's last VMs run alone at the stream ceiling;
      // hot writers: they run one at a time at the stream ceiling, below the NIC the bound assumes.
      expect(ours.makespanS / ours.lowerBoundS, shape).toBeLessThanOrEqual(shape === 'hot' ? 1.2 : 1.1);
      expect(ours.makespanS, shape).toBeLessThan(old.makespanS);
    }
  }, 60_000);
});

describe('concurrency: auto shares a link where that moves memory faster, overlaps set-ups, and runs long moves early', () => {
  const quiet = { dirty: 20, alone: 1000 };
  const hot = { dirty: 450, alone: 1000 };

  it('values a link by each guest\'s progress against its pace alone: two quiet guests fill 10 GbE, a third or a hot guest beside any other slows the link', () => {
    // One stream carries 1000 MiB/s; two share 1190.
    expect(linkValue([quiet], 1190, 1000)).toBeCloseTo(1, 5);
    expect(worthSharing([quiet], quiet, 1190, 1000)).toBe(true);
    expect(worthSharing([quiet, quiet], quiet, 1190, 1000)).toBe(false);
    // 450 MiB/s dirtied at 595: it re-sends more than the quiet one gains.
    expect(worthSharing([hot], quiet, 1190, 1000)).toBe(false);
    expect(worthSharing([quiet], hot, 1190, 1000)).toBe(false);
    // 25 GbE: three hot guests each get 993 MiB/s.
    expect(worthSharing([hot, hot], hot, 2980, 1000)).toBe(true);
    // Two guests dirtying 600 MiB/s at 595 each would never end.
    expect(converges([{ dirty: 600, alone: 1000 }, { dirty: 600, alone: 1000 }], 1190, 1000)).toBe(false);
    expect(linkValue([{ dirty: 600, alone: 1000 }, quiet], 1190, 1000)).toBe(-Infinity);
  });

  it('a migration expected to end within a set-up no longer counts against its link, but only where both guests would still converge together; a disk copy shares a link a hot memory would not', async () => {
    let now = 0;
    const hosts = { sources: [host('s1')], destinations: [host('d1'), host('d2')] };
    const limits = new Limits(resolveLimits(auto, hosts, { streamMibps: 1000 }), { now: () => now, setupMs: 1500 });
    const hold = () => {
      let release!: () => void;
      return { done: new Promise<void>((r) => (release = r)), release: () => release() };
    };
    const tick = () => new Promise((r) => setTimeout(r, 0));
    const a = hold();
    const b = hold();
    const runA = limits.run('s1', 'd1', () => a.done, { dirtyMibps: 20, expectedMs: 10_000 });
    const runB = limits.run('s1', 'd2', () => b.done, { dirtyMibps: 20, expectedMs: 60_000 });
    await tick();
    // Two streams fill s1's 10 GbE NIC.
    expect(limits.hasRoom('s1', 'd2', { dirtyMibps: 20, expectedMs: 10_000 })).toBe(false);
    // The dispatcher is told when to look again: a set-up before the first expected end.
    expect(limits.nextLook()).toBe(8_500);
    now = 9_000;
    expect(limits.hasRoom('s1', 'd2', { dirtyMibps: 20, expectedMs: 10_000 })).toBe(true);
    a.release();
    await runA;
    // A hot guest's memory beside a quiet one on 10 GbE: not worth it. The same guest copying a
    // long local disk first: its disk shares the link, and its memory comes after the other ends.
    expect(limits.hasRoom('s1', 'd1', { dirtyMibps: 450, expectedMs: 100_000 })).toBe(false);
    expect(limits.hasRoom('s1', 'd1', { dirtyMibps: 450, expectedMs: 100_000, diskMs: 80_000 })).toBe(true);
    // Its disk copy would end before the other does: its memory would share the link.
    expect(limits.hasRoom('s1', 'd1', { dirtyMibps: 450, expectedMs: 30_000, diskMs: 10_000 })).toBe(false);
    b.release();
    await runB;
    // A guest that would not converge beside any other: nothing joins it, however soon it is
    // expected to end (estimates err), until it has.
    const c = hold();
    const runC = limits.run('s1', 'd1', () => c.done, { dirtyMibps: 700, expectedMs: 30_000 });
    await tick();
    now += 29_000;
    expect(limits.hasRoom('s1', 'd2', { dirtyMibps: 700, expectedMs: 30_000 })).toBe(false);
    expect(limits.hasRoom('s1', 'd2', { dirtyMibps: 20, expectedMs: 30_000 })).toBe(false);
    c.release();
    await runC;
    expect(limits.hasRoom('s1', 'd2', { dirtyMibps: 700, expectedMs: 30_000 })).toBe(true);
  });

  const simRun = async (name: string, build: () => { fleet: ReturnType<typeof simFleet>; sources: string[] }, concurrency?: { total: number; per_source: number; per_destination: number }) => {
    const { fleet, sources } = build();
    const plan: EvacuationPlan = {
      version: 1, name, fleet: { driver: 'sim', sim: { hosts: fleet.hosts, vms: fleet.vms } },
      sources: sources as [string, ...string[]], migration: { mode: 'live', ...(concurrency ? { concurrency } : {}) },
    };
    const done = await evacuate({ file: '(test)', digest: '', plan, warnings: [] }, (o) => openDriver(plan, o), () => {}, { reportsDir: tempDir() });
    expect(done.report.totals.moved, name).toBe(done.report.totals.vms);
    return done.report.totals;
  };

  it('guests with little resident memory: the next move\'s set-up overlaps the end of the one before, where two streams per host leave the link idle through every set-up', async () => {
    const build = () => {
      const fleet = simFleet({ seed: 21, generate: { hosts: 6, vms: 60 } });
      for (const v of fleet.vms) Object.assign(v, { storage: 'shared', resident_mib: Math.round((v.memory_mib ?? 0) / 8) });
      return { fleet, sources: ['hv-001', 'hv-002'] };
    };
    const ours = await simRun('small-resident', build);
    const fixed = await simRun('small-resident-2', build, { total: 1000, per_source: 2, per_destination: 2 });
    expect(ours.makespanS).toBeLessThan(0.85 * fixed.makespanS);
    expect(ours.makespanS / ours.lowerBoundS).toBeLessThan(1.2);
  });

  it('100 GbE: a long move that would run alone at the end starts early beside the others (the tail of list scheduling); faster than the same streams as fixed limits', async () => {
    // Four sources of ten guests (2-32 GiB) onto one large receiver, every NIC 100 GbE: its
    // in-link carries twelve streams, and the 16 GiB moves left for last ran on alone.
    const build = () => {
      const rng = seeded(22);
      const sources = ['src-1', 'src-2', 'src-3', 'src-4'];
      const hosts = [...sources.map((name) => ({ name, vcpu: 96, memory_mib: 524288, disk_gib: 20000, nic_mibps: 11900 })), { name: 'dst-1', vcpu: 512, memory_mib: 4194304, disk_gib: 20000, nic_mibps: 11900 }];
      const vms = sources.flatMap((host, i) => Array.from({ length: 10 }, (_, j) => ({
        name: `vm-${i}-${j}`, host, vcpu: 2, memory_mib: 2048 << rng.int(0, 4), storage: 'shared' as const, dirty_mibps: [5, 20, 50][rng.int(0, 2)],
      })));
      return { fleet: { hosts, vms } as ReturnType<typeof simFleet>, sources };
    };
    const ours = await simRun('100gbe', build);
    const fixed = await simRun('100gbe-12', build, { total: 1000, per_source: 12, per_destination: 12 });
    expect(ours.makespanS).toBeLessThan(fixed.makespanS);
    expect(ours.makespanS / ours.lowerBoundS).toBeLessThan(1.1);
  });

  it('hot writers packed onto few receivers (six fleets): each hot guest\'s memory crosses an in-link alone, every VM moves, within 1.35x the bound, and in all faster than 2 per host', async () => {
    let ours = 0;
    let fixed = 0;
    for (const seed of [21, 22, 23, 24, 25, 26]) {
      const build = () => {
        const fleet = simFleet({ seed, generate: { hosts: 12, vms: 120 } });
        const rng = seeded(seed * 7 + 2);
        for (const v of fleet.vms) if (rng.int(0, 9) < 4) v.dirty_mibps = rng.int(350, 550);
        return { fleet, sources: ['hv-001', 'hv-002', 'hv-003', 'hv-004'] };
      };
      const a = await simRun(`few-receivers-hot-${seed}`, build);
      const b = await simRun(`few-receivers-hot-2-${seed}`, build, { total: 1000, per_source: 2, per_destination: 2 });
      expect(a.makespanS / a.lowerBoundS, String(seed)).toBeLessThan(1.35);
      ours += a.makespanS;
      fixed += b.makespanS;
    }
    // Measured: 3,467 s against 3,638 s (behind on two fleets of six, by 1.5%).
    expect(ours).toBeLessThan(0.97 * fixed);
  });
});

describe('concurrency: auto against an operator attack (fleets of its own design, run against peer settings)', () => {
  const H = (name: string, memory = 262144, nic = 1190) => ({ name, vcpu: 512, memory_mib: memory, disk_gib: 20000, nic_mibps: nic });
  const run = async (name: string, hosts: ReturnType<typeof H>[], vms: SimVm[], sources: string[], migration: Record<string, unknown> = {}) => {
    const plan: EvacuationPlan = {
      version: 1, name, fleet: { driver: 'sim', sim: { hosts, vms } }, sources: sources as [string, ...string[]],
      migration: { mode: 'live', ...migration },
    };
    const done = await evacuate({ file: '(test)', digest: '', plan, warnings: [] }, (o) => openDriver(plan, o), () => {}, { reportsDir: tempDir() });
    return done.report.totals;
  };
  const one = { total: 1000, per_source: 1, per_destination: 1 };
  const vcenter = { total: 1000, per_source: 8, per_destination: 8 };
  const kubevirt = { total: 5, per_source: 2, per_destination: 1000 };

  it('a bandwidth cap per migration sets the streams: 5 on 10 GbE under 250 MiB/s, and a guest the cap slows as much alone as beside others shares the link (auto took 3,517 s where KubeVirt\'s 5 / 2 took 1,629 s)', async () => {
    const hosts = { sources: [host('s1')], destinations: [host('d1')] };
    const l = resolveLimits(auto, hosts, { streamMibps: 1000 }, 250);
    expect(limitOn(l.perSource, 's1')).toBe(5);
    // 240 MiB/s dirtied under a 250 MiB/s cap: four of them on 10 GbE each still get 250.
    const capped = { dirty: 240, alone: 250 };
    expect(converges([capped, capped, capped, capped], 1190, 250)).toBe(true);
    expect(converges([capped, capped, capped, capped, capped], 1190, 250)).toBe(false);
    const rng = seeded(13);
    const vms: SimVm[] = ['s1', 's2'].flatMap((h) => Array.from({ length: 12 }, (_, i) => ({
      name: `${h}-v${i}`, host: h, vcpu: 2, memory_mib: [4096, 8192, 16384][rng.int(0, 2)], dirty_mibps: [5, 50, 120, 200, 240][rng.int(0, 4)],
    })));
    const fleet = [H('s1'), H('s2'), H('d1', 524288), H('d2', 524288)];
    const ours = await run('bwcap', fleet, vms, ['s1', 's2'], { bandwidth_mibps: 250 });
    const peer = await run('bwcap-kubevirt', fleet, vms, ['s1', 's2'], { bandwidth_mibps: 250, concurrency: kubevirt });
    expect(ours.moved).toBe(24);
    expect(ours.makespanS).toBeLessThan(peer.makespanS);
  });

  it('guests dirtying just under half a 10 GbE NIC into one receiver: never two side by side where each would crawl, even as one is expected to end (auto took 335 s where one at a time took 307 s, a move estimated at 11 s took 71 s)', async () => {
    const rng = seeded(7);
    const vms: SimVm[] = ['s1', 's2', 's3'].flatMap((h) => Array.from({ length: 6 }, (_, i) => ({
      name: `${h}-v${i}`, host: h, vcpu: 2, memory_mib: [4096, 8192, 16384][rng.int(0, 2)], dirty_mibps: [450, 500, 540, 570, 590][rng.int(0, 4)],
    })));
    const fleet = [H('s1'), H('s2'), H('s3'), H('d1', 1048576)];
    const ours = await run('nearhalf', fleet, vms, ['s1', 's2', 's3']);
    const serial = await run('nearhalf-1', fleet, vms, ['s1', 's2', 's3'], { concurrency: one });
    expect(ours.moved).toBe(18);
    expect(ours.makespanS).toBeLessThanOrEqual(serial.makespanS);
    expect(ours.estimates!.medianRatio).toBeLessThan(1.25);
  });

  it('guests that cannot converge even alone (dirtying above the stream ceiling) neither hold a stream nor keep quiet moves off their receiver until their deadlines (auto took 57,800 s where vCenter\'s 8 per host took 12,800 s)', async () => {
    const rng = seeded(2);
    const vms: SimVm[] = ['s1', 's2', 's3'].flatMap((h) => Array.from({ length: 8 }, (_, i) => ({
      name: `${h}-v${i}`, host: h, vcpu: 2, memory_mib: [2048, 4096, 8192][rng.int(0, 2)], dirty_mibps: i < 2 ? 1100 + 100 * rng.int(0, 9) : [5, 20, 50][rng.int(0, 2)],
    })));
    const fleet = [H('s1'), H('s2'), H('s3'), H('d1', 1048576)];
    const migration = { completion_timeout_s_per_gib: 50 };
    const ours = await run('hopeless', fleet, vms, ['s1', 's2', 's3'], migration);
    const peer = await run('hopeless-vcenter', fleet, vms, ['s1', 's2', 's3'], { ...migration, concurrency: vcenter });
    // The six that cannot converge time out under every setting; the quiet eighteen move. Measured:
    // 465 s against vCenter-like's 410 s (at most twice the streams in flight, a hard cap).
    expect(ours.moved).toBe(18);
    expect(ours.makespanS).toBeLessThanOrEqual(peer.makespanS * 1.2);
  });

  it('sources of 1, 10, 25 and 100 GbE onto one 10 GbE receiver: a 1 GbE source\'s move takes a tenth of the receiver\'s NIC, not one of its two streams (auto took 1,785 s where Nova\'s one per source took 1,505 s)', async () => {
    expect(shares([{ dirty: 5, alone: 119 }, { dirty: 5, alone: 1000 }, { dirty: 5, alone: 1000 }], 1190, 1000)).toEqual([119, 535.5, 535.5]);
    const sources = ['s1g', 's10g', 's25g', 's100g'];
    const nic: Record<string, number> = { s1g: 119, s10g: 1190, s25g: 2975, s100g: 11900 };
    // Measured: 1,196 / 2,211 / 1,473 s against Nova's 936 / 1,964 / 1,289 s before; within 0.5% after.
    for (const seed of [1, 2, 3]) {
      const rng = seeded(seed);
      const vms: SimVm[] = sources.flatMap((h) => Array.from({ length: 10 }, (_, i) => ({
        name: `${h}-v${i}`, host: h, vcpu: 2, memory_mib: [4096, 8192, 16384][rng.int(0, 2)], dirty_mibps: [5, 20, 50, 80][rng.int(0, 3)],
      })));
      const fleet = [...sources.map((h) => H(h, 262144, nic[h])), H('d10g', 524288, 1190), H('d25g', 524288, 2975), H('d100g', 524288, 11900), H('d1g', 524288, 119)];
      const ours = await run(`mixed-nics-${seed}`, fleet, vms, sources);
      const nova = await run(`mixed-nics-nova-${seed}`, fleet, vms, sources, { concurrency: { total: 1000, per_source: 1, per_destination: 1000 } });
      expect(ours.moved).toBe(40);
      expect(ours.makespanS, String(seed)).toBeLessThanOrEqual(nova.makespanS * 1.01);
    }
  });

  it('hundreds of tiny guests: each stream\'s next set-up overlaps the end of its move, ahead of 2 per host (vCenter\'s 8 per host stays ahead here: at most twice the streams are in flight, as the libvirt testbed wants)', async () => {
    const rng = seeded(11);
    const sources = ['s1', 's2', 's3', 's4'];
    const vms: SimVm[] = sources.flatMap((h) => Array.from({ length: 60 }, (_, i) => ({
      name: `${h}-v${i}`, host: h, vcpu: 1, memory_mib: 512, resident_mib: [64, 128, 256, 512][rng.int(0, 3)], dirty_mibps: [0, 1, 5, 20][rng.int(0, 3)],
    })));
    const fleet = [...sources.map((h) => H(h)), H('d1'), H('d2'), H('d3'), H('d4')];
    const ours = await run('tiny', fleet, vms, sources);
    const peer = await run('tiny-ovirt', fleet, vms, sources, { concurrency: { total: 1000, per_source: 2, per_destination: 2 } });
    expect(ours.moved).toBe(240);
    expect(ours.makespanS).toBeLessThan(0.8 * peer.makespanS);
    // vCenter-like's 8 per host stays ahead on such guests: at most twice the streams in flight.
    // Nova's one per source with no limit per destination: the estimates split a NIC among the
    // moves the plan sends over it, not among 1,000 (a 2 s move was estimated at 2,694 s).
    const nova = await run('tiny-nova', fleet, vms, sources, { concurrency: { total: 1000, per_source: 1, per_destination: 1000 } });
    expect(nova.estimates!.medianRatio).toBeGreaterThan(0.7);
    expect(nova.estimates!.medianRatio).toBeLessThan(1.5);
  });
});

describe('the report\'s lower bound', () => {
  it('counts the rounds a dirtying guest\'s pre-copy must send even alone at its best rate, and no schedule beats it', async () => {
    const run = async (dirty: number, concurrency?: { total: number; per_source: number; per_destination: number }) => {
      const fleet = simFleet({ seed: 7, generate: { hosts: 6, vms: 30 } });
      // Shared storage: the link bound, not one long disk copy, decides.
      for (const v of fleet.vms) Object.assign(v, { dirty_mibps: dirty, storage: 'shared' });
      const plan: EvacuationPlan = {
        version: 1, name: `bound-${dirty}`, fleet: { driver: 'sim', sim: { hosts: fleet.hosts, vms: fleet.vms } },
        sources: ['hv-001'], migration: { mode: 'live', ...(concurrency ? { concurrency } : {}) },
      };
      const done = await evacuate({ file: '(test)', digest: '', plan, warnings: [] }, (o) => openDriver(plan, o), () => {}, { reportsDir: tempDir() });
      expect(done.report.totals.moved).toBe(done.report.totals.vms);
      const memoryOnce = done.report.vms.reduce((s, v) => s + (fleet.vms.find((x) => x.name === v.vm)!.memory_mib ?? 0), 0);
      return { ...done.report.totals, memoryOnce };
    };
    // One at a time, and the default (auto).
    for (const c of [{ total: 1, per_source: 1, per_destination: 1 }, undefined]) {
      const quiet = await run(0, c);
      const hot = await run(400, c);
      // Never above what a schedule took.
      expect(quiet.makespanS).toBeGreaterThanOrEqual(quiet.lowerBoundS);
      expect(hot.makespanS).toBeGreaterThanOrEqual(hot.lowerBoundS);
      // The hot guests' rounds raise it by a good share of their memory (on the 10 GbE default NIC,
      // 1190 MiB/s) over the quiet fleet's, where each sends its memory once.
      expect(hot.lowerBoundS - quiet.lowerBoundS).toBeGreaterThan((0.25 * hot.memoryOnce) / 1190);
      // One at a time, each alone at its best rate: the schedule the bound assumes, within set-up
      // costs (1.55 s a move) and one stream's ceiling below the NIC (1000 of 1190 MiB/s).
      if (c) expect(hot.makespanS / hot.lowerBoundS).toBeLessThan(1.4);
    }
  }, 60_000);
});

describe('honest estimates', () => {
  it('the estimate counts the NIC shared by the source\'s streams and the driver\'s fixed costs: on the example plan the moves take 0.8x-1.25x their estimate; the report says so', async () => {
    const loaded = loadPlan('plans/example.yaml');
    const done = await evacuate(loaded, (o) => openDriver(loaded.plan, o), () => {}, { reportsDir: tempDir() });
    const e = done.report.totals.estimates!;
    expect(e.compared).toBeGreaterThan(20);
    expect(e.medianRatio).toBeGreaterThanOrEqual(0.8);
    expect(e.medianRatio).toBeLessThanOrEqual(1.25);
    const moved = done.report.vms.filter((v) => v.status === 'moved');
    expect(moved.every((v) => v.estimateS !== undefined)).toBe(true);
  });

  it('cold moves are estimated as cold moves (shutdown, disk, define and boot: the driver\'s fixed costs), the report compares them, and a window is kept by them (an operator attack saw 2 s estimated for 35 s moves, and moves ending past window_end)', async () => {
    const run = async (windowS?: number) => {
      const fleet = simFleet({ seed: 9, generate: { hosts: 6, vms: 36 } });
      const plan: EvacuationPlan = {
        version: 1, name: `cold-est-${windowS ?? 'open'}`, fleet: { driver: 'sim', sim: { hosts: fleet.hosts, vms: fleet.vms } }, sources: ['hv-001'],
        migration: { mode: 'cold', cold: { allow: ['*'] }, concurrency: { total: 2, per_source: 2, per_destination: 1 }, ...(windowS ? { window_end: new Date(Date.now() + windowS * 1000).toISOString() } : {}) },
      };
      const done = await evacuate({ file: '(test)', digest: '', plan, warnings: [] }, (o) => openDriver(plan, o), () => {}, { reportsDir: tempDir() });
      return done.report;
    };
    const open = await run();
    expect(open.totals.moved).toBe(open.totals.vms);
    expect(open.totals.estimates!.compared).toBe(open.totals.moved);
    expect(open.totals.estimates!.medianRatio).toBeGreaterThanOrEqual(0.8);
    expect(open.totals.estimates!.medianRatio).toBeLessThanOrEqual(1.25);
    // A window shorter than the whole run: what starts ends inside it, what would not is left, saying why.
    const windowS = 70;
    const shut = await run(windowS);
    const started = shut.vms.filter((v) => v.attempts.length > 0);
    expect(started.length).toBeGreaterThan(0);
    expect(shut.vms.some((v) => /maintenance window closes/.test(v.reason ?? ''))).toBe(true);
    for (const v of started) expect(v.attempts[0].startS + v.attempts[0].durationS, v.vm).toBeLessThanOrEqual(windowS + 1);
  }, 60_000);

  it('the run corrects its estimates by what its own finished moves took, once three ended', () => {
    const l = new Learned();
    l.add(10, 30);
    l.add(10, 31);
    expect(l.correct(10)).toBe(10);
    l.add(10, 29);
    expect(l.correct(10)).toBe(30);
    l.add(10, 1000);
    l.add(10, 1000);
    // The median: one slow outlier does not move it much.
    expect(l.correct(2)).toBeCloseTo(6.2, 5);
  });

  it('estimates hold where links are uneven or guests too hot to share: a hot guest runs alone, a slow destination NIC counts (0.7-1.5x)', async () => {
    const runWith = async (name: string, change: (f: ReturnType<typeof simFleet>) => void) => {
      const fleet = simFleet({ seed: 9, generate: { hosts: 9, vms: 45 } });
      change(fleet);
      const plan: EvacuationPlan = { version: 1, name, fleet: { driver: 'sim', sim: { hosts: fleet.hosts, vms: fleet.vms } }, sources: ['hv-001'], migration: { mode: 'live' } };
      const done = await evacuate({ file: '(test)', digest: '', plan, warnings: [] }, (o) => openDriver(plan, o), () => {}, { reportsDir: tempDir() });
      expect(done.report.totals.moved, name).toBe(done.report.totals.vms);
      return done.report.totals.estimates!.medianRatio;
    };
    const hot = await runWith('hot', (f) => f.vms.filter((v) => v.host === 'hv-001').forEach((v) => Object.assign(v, { memory_mib: 16384, resident_mib: 12000, dirty_mibps: 550 })));
    const slow = await runWith('slow', (f) => f.hosts.filter((_, i) => i % 2 === 1).forEach((h) => (h.nic_mibps = 119)));
    expect(hot).toBeGreaterThanOrEqual(0.7);
    expect(hot).toBeLessThanOrEqual(1.5);
    expect(slow).toBeGreaterThanOrEqual(0.7);
    expect(slow).toBeLessThanOrEqual(1.5);
  });
});
