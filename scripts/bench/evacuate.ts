/**
 * npm run bench:evacuate — how long an evacuation takes with evacuator's default concurrency and
 * with each peer's default, on simulated fleets of several shapes, run in the same process on the
 * same fleets: makespan (simulated), total guest downtime, and the link lower bound (no schedule
 * is faster than the busiest source's out-link, the busiest destination's in-link, or the longest
 * single stream). Prints figures; asserts nothing.
 *
 *   --seeds 11,12,13,14,15   the fleets (one per seed) of each shape
 *   --only few-big,many-small,write-heavy,local-disks,25gbe,hot-writers,few-receivers-hot,small-resident,100gbe   shapes to run (default: all)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDriver } from '../fleet/open.ts';
import { simFleet } from '../fleet/sim/fleet.ts';
import type { EvacuationPlan, SimHost, SimVm } from '../plan/plan-types.ts';
import { evacuate } from '../runner/evacuate.ts';
import { seeded } from '../random.ts';

const { values: args } = parseArgs({ options: { only: { type: 'string', default: 'few-big,many-small,write-heavy,local-disks,25gbe,hot-writers,few-receivers-hot,small-resident,100gbe' }, seeds: { type: 'string', default: '11,12,13,14,15' } } });

type Concurrency = NonNullable<NonNullable<EvacuationPlan['migration']>['concurrency']>;
const UNLIMITED = 1000;

/** Each scheduler's default, as its documentation gives it. */
const SCHEDULERS: { name: string; concurrency?: Concurrency }[] = [
  { name: 'evacuator default' },
  // The fixed default before concurrency: auto.
  { name: 'evacuator 4 / 2 / 2 (old default)', concurrency: { total: 4, per_source: 2, per_destination: 2 } },
  // nova.conf max_concurrent_live_migrations = 1: one outgoing live migration per compute.
  { name: 'Nova (1 per source)', concurrency: { total: UNLIMITED, per_source: 1, per_destination: UNLIMITED } },
  // KubeVirt: parallelMigrationsPerCluster 5, parallelOutboundMigrationsPerNode 2.
  { name: 'KubeVirt (5 total, 2 out per node)', concurrency: { total: 5, per_source: 2, per_destination: UNLIMITED } },
  // oVirt: 2 migrations per host (MaxNumOfVmsMigrations / migration policy default).
  { name: 'oVirt (2 per host)', concurrency: { total: UNLIMITED, per_source: 2, per_destination: 2 } },
  // vCenter: 8 concurrent vMotions per host on 10 GbE.
  { name: 'vCenter-like (8 per 10 GbE host)', concurrency: { total: UNLIMITED, per_source: 8, per_destination: 8 } },
];

interface Shape {
  name: string;
  hosts: number;
  vms: number;
  sources: number;
  change?: (vms: SimVm[], hosts: SimHost[], rng: ReturnType<typeof seeded>) => void;
}

const SHAPES: Shape[] = [
  { name: 'few-big', hosts: 40, vms: 480, sources: 4 },
  { name: 'many-small', hosts: 60, vms: 360, sources: 20 },
  {
    name: 'write-heavy', hosts: 40, vms: 400, sources: 4,
    // A third of the guests dirty memory at 150-500 MiB/s (databases, caches).
    change: (vms, _, rng) => {
      for (const v of vms) if (rng.int(0, 2) === 0) v.dirty_mibps = rng.int(150, 500);
    },
  },
  { name: 'local-disks', hosts: 30, vms: 300, sources: 3, change: (vms) => vms.forEach((v) => (v.storage = 'local')) },
  // 25 GbE hosts: a single stream (QEMU's ceiling) fills less than half the NIC.
  { name: '25gbe', hosts: 40, vms: 480, sources: 4, change: (_, hosts) => hosts.forEach((h) => (h.nic_mibps = 2980)) },
  {
    name: 'hot-writers', hosts: 40, vms: 400, sources: 4,
    // Half the guests dirty 350-550 MiB/s: alone on a 10 GbE link they converge, sharing it they do not.
    change: (vms, _, rng) => {
      for (const v of vms) if (rng.int(0, 1) === 0) v.dirty_mibps = rng.int(350, 550);
    },
  },
  {
    // Few receivers (pack on a small fleet puts the sources' VMs on two or three hosts), 40% hot
    // writers: every hot guest crosses one in-link that cannot carry two of them.
    name: 'few-receivers-hot', hosts: 12, vms: 120, sources: 4,
    change: (vms, _, rng) => {
      for (const v of vms) if (rng.int(0, 9) < 4) v.dirty_mibps = rng.int(350, 550);
    },
  },
  {
    // Guests that touched an eighth of their memory: each move sends little, so its fixed set-up
    // time (1.5 s in the simulator) weighs as much as its bytes.
    name: 'small-resident', hosts: 6, vms: 60, sources: 2,
    change: (vms) => vms.forEach((v) => Object.assign(v, { storage: 'shared', resident_mib: Math.round((v.memory_mib ?? 0) / 8) })),
  },
  // 100 GbE, shared storage: twelve streams fill a NIC, and which moves run last decides the makespan.
  {
    name: '100gbe', hosts: 12, vms: 120, sources: 4,
    change: (vms, hosts) => {
      hosts.forEach((h) => (h.nic_mibps = 11900));
      vms.forEach((v) => (v.storage = 'shared'));
    },
  },
];

/** Fleets per shape, each from its own seed (--seeds: others, to check on fleets a change was not tuned on). */
const SEEDS = args.seeds.split(',').map(Number);

function planFor(shape: Shape, seed: number, concurrency?: Concurrency): EvacuationPlan {
  const fleet = simFleet({ seed, generate: { hosts: shape.hosts, vms: shape.vms } });
  shape.change?.(fleet.vms, fleet.hosts, seeded(seed * 7 + 2));
  return {
    version: 1, name: `bench-${shape.name}`,
    fleet: { driver: 'sim', sim: { hosts: fleet.hosts, vms: fleet.vms } },
    sources: fleet.hosts.slice(0, shape.sources).map((h) => h.name) as [string, ...string[]],
    migration: { mode: 'live', ...(concurrency ? { concurrency } : {}) },
  };
}

async function runOnce(plan: EvacuationPlan) {
  const dir = mkdtempSync(join(tmpdir(), 'evac-bench-'));
  try {
    const done = await evacuate({ file: '(bench)', digest: '', plan, warnings: [] }, (o) => openDriver(plan, o), () => {}, { reportsDir: dir });
    const t = done.report.totals;
    const downtime = done.report.vms.reduce((a, v) => a + v.downtimeMs, 0);
    return { makespanS: t.makespanS, boundS: t.lowerBoundS, moved: t.moved, vms: t.vms, downtimeS: downtime / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const only = new Set(args.only.split(','));
console.log(`The bound of a fleet: the link model for what had to move (each VM its local disk and, moved live, the least memory its pre-copy can send): the busiest source out-link or destination in-link after one set-up, or the longest stream. ${SEEDS.length} fleets per shape (seeds ${SEEDS.join(', ')}).`);
console.log('shape | scheduler | moved | makespan / bound: mean | worst | makespan (mean, simulated) | total downtime (mean)');
for (const shape of SHAPES.filter((s) => only.has(s.name))) {
  const runs = SCHEDULERS.map(() => [] as Awaited<ReturnType<typeof runOnce>>[]);
  const bounds: number[] = [];
  for (const seed of SEEDS) {
    const got = [];
    for (const s of SCHEDULERS) got.push(await runOnce(planFor(shape, seed, s.concurrency)));
    // The bound of what had to move: a run that left VMs has a lower one of its own.
    bounds.push(Math.max(...got.map((r) => r.boundS)));
    got.forEach((r, i) => runs[i].push(r));
  }
  const ratios = runs.map((rs) => rs.map((r, k) => r.makespanS / bounds[k]));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  SCHEDULERS.forEach((s, i) => {
    const moved = runs[i].reduce((a, r) => a + r.moved, 0);
    const vms = runs[i].reduce((a, r) => a + r.vms, 0);
    console.log(`${shape.name} (${shape.vms} VMs, ${shape.sources} of ${shape.hosts} hosts drained) | ${s.name} | ${moved}/${vms} | ${mean(ratios[i]).toFixed(3)}x | ${Math.max(...ratios[i]).toFixed(3)}x | ${mean(runs[i].map((r) => r.makespanS)).toFixed(0)} s | ${mean(runs[i].map((r) => r.downtimeS)).toFixed(1)} s`);
  });
  // Per fleet: evacuator's default against the best peer default that moved every VM.
  const peers = SCHEDULERS.map((_, i) => i).filter((i) => !SCHEDULERS[i].name.startsWith('evacuator'));
  const against = SEEDS.map((_, k) => {
    const best = Math.min(...peers.filter((i) => runs[i][k].moved === runs[i][k].vms).map((i) => runs[i][k].makespanS));
    return runs[0][k].makespanS / best;
  });
  console.log(`${shape.name}: evacuator's default ${mean(ratios[0]).toFixed(3)}x the bound (fleet by fleet: ${ratios[0].map((x) => x.toFixed(3)).join(', ')}); against the best peer default that moved every VM, fleet by fleet: ${against.map((x) => x.toFixed(3)).join(', ')}\n`);
}
