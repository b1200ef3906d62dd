/**
 * npm run bench:evacuate — how long an evacuation takes with evacuator's default concurrency and
 * with each peer's default, on simulated fleets of several shapes, run in the same process on the
 * same fleets: makespan (simulated), total guest downtime, and the link lower bound (no schedule
 * is faster than the busiest source's out-link, the busiest destination's in-link, or the longest
 * single stream). Prints figures; asserts nothing.
 *
 *   --only few-big,many-small,write-heavy,local-disks,25gbe,hot-writers   shapes to run (default: all)
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

const { values: args } = parseArgs({ options: { only: { type: 'string', default: 'few-big,many-small,write-heavy,local-disks,25gbe,hot-writers' } } });

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
  change?: (vms: SimVm[], hosts: SimHost[]) => void;
}

const SHAPES: Shape[] = [
  { name: 'few-big', hosts: 40, vms: 480, sources: 4 },
  { name: 'many-small', hosts: 60, vms: 360, sources: 20 },
  {
    name: 'write-heavy', hosts: 40, vms: 400, sources: 4,
    // A third of the guests dirty memory at 150-500 MiB/s (databases, caches).
    change: (vms) => {
      const rng = seeded(7);
      for (const v of vms) if (rng.int(0, 2) === 0) v.dirty_mibps = rng.int(150, 500);
    },
  },
  { name: 'local-disks', hosts: 30, vms: 300, sources: 3, change: (vms) => vms.forEach((v) => (v.storage = 'local')) },
  // 25 GbE hosts: a single stream (QEMU's ceiling) fills less than half the NIC.
  { name: '25gbe', hosts: 40, vms: 480, sources: 4, change: (_, hosts) => hosts.forEach((h) => (h.nic_mibps = 2980)) },
  {
    name: 'hot-writers', hosts: 40, vms: 400, sources: 4,
    // Half the guests dirty 350-550 MiB/s: alone on a 10 GbE link they converge, sharing it they do not.
    change: (vms) => {
      const rng = seeded(9);
      for (const v of vms) if (rng.int(0, 1) === 0) v.dirty_mibps = rng.int(350, 550);
    },
  },
];

function planFor(shape: Shape, seed: number, concurrency?: Concurrency): EvacuationPlan {
  const fleet = simFleet({ seed, generate: { hosts: shape.hosts, vms: shape.vms } });
  shape.change?.(fleet.vms, fleet.hosts);
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
console.log('The bound of a shape: the link model for what had to move (each VM its memory once and its local disk): the busiest source out-link, the busiest destination in-link, the longest stream.');
console.log('shape | scheduler | moved | makespan (simulated) | makespan / bound | total downtime');
for (const shape of SHAPES.filter((s) => only.has(s.name))) {
  const rows: { name: string; r: Awaited<ReturnType<typeof runOnce>> }[] = [];
  for (const s of SCHEDULERS) rows.push({ name: s.name, r: await runOnce(planFor(shape, 11, s.concurrency)) });
  const bound = Math.min(...rows.map((x) => x.r.boundS));
  for (const { name, r } of rows) {
    console.log(`${shape.name} (${shape.vms} VMs, ${shape.sources} of ${shape.hosts} hosts drained) | ${name} | ${r.moved}/${r.vms} | ${r.makespanS.toFixed(0)} s | ${(r.makespanS / bound).toFixed(3)}x | ${r.downtimeS.toFixed(1)} s`);
  }
  const ours = rows[0].r.makespanS;
  const peers = rows.filter((x) => !x.name.startsWith('evacuator') && x.r.moved === x.r.vms);
  const best = Math.min(...peers.map((x) => x.r.makespanS));
  console.log(`${shape.name}: bound ${bound.toFixed(0)} s; evacuator's default ${(ours / bound).toFixed(3)}x the bound, ${(ours / best).toFixed(3)}x the best peer default that moved every VM\n`);
}
