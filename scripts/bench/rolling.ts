/**
 * npm run bench:rolling — rolling maintenances of generated simulated clusters, each strategy in
 * the same run on the same fleet: evacuator's roll (wave 1 and wave auto, each VM moved once where
 * room allows), the move-back baseline (k = 1, every VM back to its host once that host is in
 * service: Xen Orchestra's rolling update, Nutanix, VMware ROBO), and the leave-where-landed baseline
 * (k = 1, a shell loop: evacuate a host onto every other, maintain it, next; VMs that landed on hosts
 * not yet maintained move again). Prints per cluster and strategy: migrations, GiB sent, simulated
 * duration of the whole roll, wall time, and bytes against the move-back baseline. Asserts nothing.
 * The clusters (seeds, sizes) are not the tests' ones.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardDriver } from '../fleet/guard.ts';
import { openDriver } from '../fleet/open.ts';
import { SimDriver } from '../fleet/sim/driver.ts';
import type { LoadedPlan } from '../plan/load.ts';
import type { EvacuationPlan } from '../plan/plan-types.ts';
import { settingsOf } from '../plan/settings.ts';
import { roll } from '../rolling/roll.ts';
import { evacuate, guardLimits } from '../runner/evacuate.ts';

const CLUSTERS = [
  { name: '20 hosts, 200 VMs, 10 anti-affinity groups', hosts: 20, vms: 200, groups: 10, seed: 101, local: 0.1 },
  { name: '60 hosts, 900 VMs, 20 groups', hosts: 60, vms: 900, groups: 20, seed: 202, local: 0.1 },
  { name: '120 hosts, 1,200 VMs, 30% local disks', hosts: 120, vms: 1200, groups: 0, seed: 303, local: 0.3 },
];
const STEP_S = 900;
const GiB = 2 ** 30;

function planOf(c: (typeof CLUSTERS)[number], rolling: Record<string, unknown>): EvacuationPlan {
  return {
    version: 1, name: 'bench', kind: 'rolling',
    fleet: { driver: 'sim', sim: { seed: c.seed, generate: { hosts: c.hosts, vms: c.vms, anti_affinity_groups: c.groups, local_storage_share: c.local } } },
    rolling: { selector: {}, failure_domain: 'rack', maintenance: { simulate: { duration_s: STEP_S, hypervisor_version: '9.9.0' } }, checks: { hypervisor_version: '9.9.0' }, ...rolling },
    placement: { max_utilization: 0.9 },
    migration: { mode: 'live', concurrency: { total: 8, per_source: 2, per_destination: 2 } },
  } as EvacuationPlan;
}

const loadedOf = (plan: EvacuationPlan): LoadedPlan => ({ file: 'bench.yaml', digest: 'sha256:bench', plan, warnings: [] });

interface Row { strategy: string; migrations: number; bytes: number; hours: number; wallS: number; maintained: number }

async function ours(c: (typeof CLUSTERS)[number], strategy: string, rolling: Record<string, unknown>): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'evac-bench-roll-'));
  try {
    const plan = planOf(c, rolling);
    const t0 = Date.now();
    const done = await roll(loadedOf(plan), (o) => openDriver(plan, o), () => {}, { reportsDir: dir, writeReports: false });
    const end = Math.max(0, ...done.report.hosts.map((h) => h.inServiceS ?? 0));
    return { strategy, migrations: done.report.totals.migrations, bytes: done.report.totals.bytes, hours: end / 3600, wallS: (Date.now() - t0) / 1000, maintained: done.report.totals.maintained };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The shell loop: each host in name order, evacuated onto every other host in service, maintained, back. */
async function loop(c: (typeof CLUSTERS)[number]): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'evac-bench-loop-'));
  try {
    const base = planOf(c, {});
    const driver = guardDriver(new SimDriver(base.fleet.sim!), guardLimits(settingsOf(base)));
    const inv = await driver.inventory();
    if (!inv.ok) throw new Error(inv.detail);
    const hosts = inv.inventory.hosts.map((h) => h.name).sort();
    const t0 = Date.now();
    let migrations = 0;
    let bytes = 0;
    let maintained = 0;
    for (const h of hosts) {
      const { rolling: _r, ...rest } = base;
      const plan: EvacuationPlan = { ...rest, kind: 'evacuate', sources: [h], destinations: { hosts: hosts.filter((x) => x !== h) } };
      const ev = await evacuate(loadedOf(plan), driver, () => {}, { reportsDir: join(dir, h), writeReports: false });
      for (const v of ev.report.vms) if (v.status === 'moved') {
        migrations++;
        bytes += v.bytes;
      }
      if (ev.report.proofs.every((p) => p.empty)) {
        await driver.maintain!(h, { durationMs: STEP_S * 1000, version: '9.9.0', fail: false });
        maintained++;
      }
      await driver.fence(h, null, true);
    }
    const hours = driver.clock.now() / 3_600_000;
    await driver.close();
    return { strategy: 'leave-where-landed k=1 (shell loop)', migrations, bytes, hours, wallS: (Date.now() - t0) / 1000, maintained };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const c of CLUSTERS) {
  console.log(`\n${c.name} (seed ${c.seed}), maintenance step ${STEP_S} s per host`);
  const rows = [
    await ours(c, 'evacuator, wave 1 (default)', { wave: 1 }),
    await ours(c, 'evacuator, wave auto (max 4)', { wave: 'auto', max_wave: 4 }),
    await ours(c, 'move-back k=1 (return: origin)', { wave: 1, return: 'origin' }),
    await loop(c),
  ];
  const back = rows[2].bytes;
  console.log('strategy                               | hosts done | migrations | GiB sent | x move-back bytes | simulated roll (h) | wall (s)');
  for (const r of rows) {
    console.log(`${r.strategy.padEnd(38)} | ${String(r.maintained).padStart(10)} | ${String(r.migrations).padStart(10)} | ${(r.bytes / GiB).toFixed(0).padStart(8)} | ${(r.bytes / back).toFixed(3).padStart(17)} | ${r.hours.toFixed(2).padStart(18)} | ${r.wallS.toFixed(1).padStart(8)}`);
  }
}
