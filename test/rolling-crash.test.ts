/**
 * Rolls killed with SIGKILL at random steps (of the roll's own journal or a wave's) and resumed:
 * every host maintained, every VM once, origins as they were before the roll, the migrations
 * counted as the waves' journals have them. 6 runs in npm test; npm run test:crash runs 40.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimDriver } from '../scripts/fleet/sim/driver.ts';
import type { RollReport } from '../scripts/rolling/roll.ts';
import { cli, planFile, tempDir } from './helpers.ts';
import { cluster, fleetAfter, movesByVm } from './rolling-helpers.ts';

describe('rolling maintenance: killed and resumed', () => {
  it('a roll killed at random steps (its own journal and the waves\') resumes to the end: every host maintained, every VM once, none lost or doubled', async () => {
    const { $ } = await import('zx');
    const runs = Number(process.env.EVAC_ROLL_KILL_RUNS ?? 6);
    const rng = fc.sample(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 60 })), { numRuns: runs, seed: 42 });
    for (const [inRoll, at] of rng) {
      const dir = tempDir();
      const file = planFile(cluster(10, 60, 2, 9, { wave: 'auto', max_wave: 3 }), dir);
      const reports = join(dir, 'reports');
      const killed = await $({ nothrow: true, quiet: true, env: { ...process.env, [inRoll ? 'EVACUATOR_ROLL_KILL_AFTER' : 'EVACUATOR_KILL_AFTER']: String(at) } })`node dist/evacuator.js run ${file} --reports ${reports}`;
      let code = killed.exitCode;
      for (let i = 0; i < 3 && code !== 0; i++) code = (await cli('run', file, '--reports', reports, '--resume')).code;
      expect(code, `killed at ${inRoll ? 'roll' : 'wave'} line ${at}`).toBe(0);
      const fleet = fleetAfter(reports);
      expect(fleet.domains).toHaveLength(60);
      expect(new Set(fleet.domains.map((d) => d.vm.name)).size).toBe(60);
      for (const d of fleet.domains) expect(d.vm.state).toBe('running');
      for (const h of fleet.hosts) expect([h.name, h.hypervisor.version, h.fence]).toEqual([h.name, '9.9.0', undefined]);
      const report = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
      expect(report.totals.maintained).toBe(10);
      // Origins are where the VMs were before the roll, whatever the kill cut.
      const inv = await new SimDriver(cluster(10, 60, 2, 9).fleet.sim!).inventory();
      if (!inv.ok) throw new Error(inv.detail);
      const start = new Map(inv.inventory.vms.map((v) => [v.name, v.host]));
      for (const v of report.vms) expect([v.vm, v.origin]).toEqual([v.vm, start.get(v.vm)]);
      expect(report.totals.migrations).toBe([...movesByVm(reports).values()].reduce((a, b) => a + b, 0));
      for (const n of movesByVm(reports).values()) expect(n).toBeLessThanOrEqual(2);
    }
  }, 300_000);
});

