/**
 * npm run bench:sim — wall time to simulate generated evacuations of growing size, with the
 * 50-VM run as the baseline measured in the same run. Prints figures; asserts nothing.
 */
import { performance } from 'node:perf_hooks';
import { discover } from '../fleet/discover.ts';
import { SimDriver } from '../fleet/sim/driver.ts';
import type { EvacuationPlan } from '../plan/plan-types.ts';
import { settingsOf } from '../plan/settings.ts';
import { makeBlueprint } from '../preflight/blueprint.ts';
import { runBlueprint } from '../runner/run.ts';

async function once(vms: number): Promise<{ ms: number; moved: number; virtualS: number }> {
  const hosts = Math.max(10, Math.ceil(vms / 12));
  const [first, ...rest] = Array.from({ length: Math.ceil(hosts / 4) }, (_, i) => `hv-${String(i + 1).padStart(3, '0')}`);
  const plan: EvacuationPlan = {
    version: 1, name: `bench-${vms}`,
    sources: [first, ...rest],
    fleet: { driver: 'sim', sim: { seed: 1, generate: { hosts, vms } } },
    migration: { concurrency: { total: 16, per_source: 2, per_destination: 2 } },
  };
  const t0 = performance.now();
  const settings = settingsOf(plan);
  const driver = new SimDriver(plan.fleet.sim!);
  const snap = await discover(driver, plan);
  const bp = await makeBlueprint({ file: '(bench)', digest: '', plan, warnings: [] }, settings, snap, driver);
  const run = await runBlueprint(bp, snap, settings, driver, () => {}, { stop: new AbortController().signal });
  return { ms: performance.now() - t0, moved: run.vms.filter((v) => v.status === 'moved').length, virtualS: (run.endedAt - run.startedAt) / 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows: { vms: number; ms: number; moved: number; virtualS: number }[] = [];
for (const vms of [50, 500, 2000]) {
  const runs = [];
  for (let i = 0; i < 5; i++) runs.push(await once(vms));
  rows.push({ vms, ms: median(runs.map((r) => r.ms)), moved: runs[0].moved, virtualS: runs[0].virtualS });
}
const base = rows[0];
console.log('VMs on fleet | moved | simulated makespan | wall time (median of 5) | ratio to 50-VM baseline');
for (const r of rows) {
  console.log(`${String(r.vms).padStart(12)} | ${String(r.moved).padStart(5)} | ${r.virtualS.toFixed(0).padStart(16)} s | ${r.ms.toFixed(1).padStart(20)} ms | ${(r.ms / base.ms).toFixed(2)}x`);
}
