import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EvacEvent } from '../scripts/events.ts';
import { discover } from '../scripts/fleet/discover.ts';
import type { ColdRequest, Driver, LiveRequest } from '../scripts/fleet/driver.ts';
import { SimDriver } from '../scripts/fleet/sim/driver.ts';
import { loadPlan } from '../scripts/plan/load.ts';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import { settingsOf } from '../scripts/plan/settings.ts';
import { makeBlueprint } from '../scripts/preflight/blueprint.ts';
import { runBlueprint } from '../scripts/runner/run.ts';
import { planFile } from './helpers.ts';

/** Wraps a driver and records how many migrations are in flight, per source, per destination and in total. */
class Recording {
  readonly peak = { total: 0, source: new Map<string, number>(), destination: new Map<string, number>() };
  private now = { total: 0, source: new Map<string, number>(), destination: new Map<string, number>() };
  starts = 0;

  constructor(private readonly inner: Driver) {}

  wrap(): Driver {
    const track = <R extends LiveRequest | ColdRequest, T>(fn: (r: R) => Promise<T>) => async (r: R) => {
      this.enter(r.vm.host, r.destination);
      try {
        return await fn(r);
      } finally {
        this.leave(r.vm.host, r.destination);
      }
    };
    const d = this.inner;
    return {
      name: d.name, clock: d.clock,
      inventory: () => d.inventory(), preflight: (i) => d.preflight(i), abort: (v) => d.abort(v), locate: (v, h) => d.locate(v, h), close: () => d.close(),
      recover: (r) => d.recover(r), fence: (h, f, force) => d.fence(h, f, force),
      liveMigrate: track((r: LiveRequest) => d.liveMigrate(r)),
      coldMigrate: track((r: ColdRequest) => d.coldMigrate(r)),
    };
  }

  private enter(src: string, dst: string) {
    this.starts++;
    this.now.total++;
    this.now.source.set(src, (this.now.source.get(src) ?? 0) + 1);
    this.now.destination.set(dst, (this.now.destination.get(dst) ?? 0) + 1);
    this.peak.total = Math.max(this.peak.total, this.now.total);
    this.peak.source.set(src, Math.max(this.peak.source.get(src) ?? 0, this.now.source.get(src)!));
    this.peak.destination.set(dst, Math.max(this.peak.destination.get(dst) ?? 0, this.now.destination.get(dst)!));
  }

  private leave(src: string, dst: string) {
    this.now.total--;
    this.now.source.set(src, this.now.source.get(src)! - 1);
    this.now.destination.set(dst, this.now.destination.get(dst)! - 1);
  }
}

function generated(limits: { total: number; per_source: number; per_destination: number }, seed: number, groups = 4): EvacuationPlan {
  return {
    version: 1, name: 'gen', sources: ['hv-001', 'hv-002', 'hv-003'],
    fleet: { driver: 'sim', sim: { seed, generate: { hosts: 10, vms: 120, anti_affinity_groups: groups } } },
    migration: { concurrency: limits, cold: { allow: ['*'] } },
  };
}

async function evacuate(plan: EvacuationPlan, wrap: (d: Driver) => Driver = (d) => d, stop = new AbortController().signal, onEvent: (e: EvacEvent) => void = () => {}, halt?: AbortSignal) {
  const loaded = loadPlan(planFile(plan));
  const settings = settingsOf(loaded.plan);
  const driver = wrap(new SimDriver(loaded.plan.fleet.sim!));
  const snap = await discover(driver, loaded.plan);
  const bp = await makeBlueprint(loaded, settings, snap, driver);
  const events: EvacEvent[] = [];
  const run = await runBlueprint(bp, snap, settings, driver, (e) => {
    events.push(e);
    onEvent(e);
  }, { stop, ...(halt ? { halt } : {}) });
  return { bp, run, events, driver };
}

describe('runner', () => {
  it('never exceeds the total, per-source and per-destination limits, and reaches them', async () => {
    await fc.assert(fc.asyncProperty(
      fc.record({ total: fc.integer({ min: 1, max: 8 }), per_source: fc.integer({ min: 1, max: 4 }), per_destination: fc.integer({ min: 1, max: 3 }) }),
      fc.integer({ min: 1, max: 1000 }),
      async (limits, seed) => {
        let rec!: Recording;
        const { bp, run } = await evacuate(generated(limits, seed), (d) => (rec = new Recording(d)).wrap());
        expect(rec.starts).toBeGreaterThanOrEqual(bp.moves.length);
        expect(rec.peak.total).toBeLessThanOrEqual(limits.total);
        for (const n of rec.peak.source.values()) expect(n).toBeLessThanOrEqual(limits.per_source);
        for (const n of rec.peak.destination.values()) expect(n).toBeLessThanOrEqual(limits.per_destination);
        // Not merely safe: the dispatcher fills slots greedily, so it reaches at least half of what
        // the limits and the used destinations allow (a maximal matching is half a maximum one).
        const reachable = Math.min(limits.total, 3 * limits.per_source, bp.destinationsUsed * limits.per_destination);
        expect(rec.peak.total).toBeGreaterThanOrEqual(Math.ceil(reachable / 2));
        expect(run.vms.filter((v) => v.status === 'moved').length).toBe(bp.moves.length);
      },
    ), { numRuns: 25 });
  });

  it('moves every VM of a 500-VM generated fleet and proves the sources empty', async () => {
    const plan = generated({ total: 8, per_source: 2, per_destination: 2 }, 7);
    plan.fleet.sim!.generate = { hosts: 40, vms: 500 };
    const { run } = await evacuate(plan);
    expect(run.vms.filter((v) => v.source.match(/hv-00[123]/)).every((v) => v.status === 'moved')).toBe(true);
    expect(run.proofs.map((p) => p.empty)).toEqual([true, true, true]);
  });

  it('a destination that crashes mid-run: its in-flight VMs stay on their source and go elsewhere', async () => {
    const probe = await evacuate(generated({ total: 4, per_source: 2, per_destination: 2 }, 3, 0));
    const victim = probe.bp.moves[0].destination;
    const plan = generated({ total: 4, per_source: 2, per_destination: 2 }, 3, 0);
    plan.fleet.sim!.faults = [{ kind: 'crash', host: victim, at_s: 20 }];
    const { run, events } = await evacuate(plan);
    const redirected = events.filter((e) => e.kind === 'fallback' && e.to === 'another destination');
    expect(redirected.length).toBeGreaterThan(0);
    for (const v of run.vms.filter((x) => x.status === 'moved')) {
      const last = v.attempts.at(-1)!;
      expect(last.outcome).toBe('ok');
      if (last.start >= 20_000) expect(v.host).not.toBe(victim);
    }
    const left = run.vms.filter((v) => v.status !== 'moved');
    expect(left, JSON.stringify(left, null, 1)).toEqual([]);
    expect(run.proofs.every((p) => p.empty)).toBe(true);
  });

  it('a first interrupt starts nothing new and lets those in flight finish', async () => {
    const stop = new AbortController();
    let rec!: Recording;
    const plan = generated({ total: 2, per_source: 1, per_destination: 1 }, 5);
    let finished = 0;
    const { run, bp } = await evacuate(plan, (d) => (rec = new Recording(d)).wrap(), stop.signal, (e) => {
      if (e.kind === 'move-end' && ++finished === 3) stop.abort();
    });
    expect(run.interrupted).toBe(true);
    const started = run.vms.filter((v) => v.attempts.length > 0);
    expect(started.length).toBeLessThan(bp.moves.length);
    expect(started.filter((v) => v.status !== 'moved').map((v) => [v.vm, v.reason])).toEqual([]);
    expect(run.vms.filter((v) => v.reason === 'not started: the run was interrupted').length).toBe(bp.moves.length - started.length);
    expect(rec.starts).toBe(started.length);
  });

  it('a second interrupt cancels the live migrations in flight: their guests stay on their sources, none is lost or doubled', async () => {
    const stop = new AbortController();
    const halt = new AbortController();
    const plan = generated({ total: 4, per_source: 2, per_destination: 2 }, 11);
    let started = 0;
    const { run, driver, bp } = await evacuate(plan, undefined, stop.signal, (e) => {
      if (e.kind === 'move-start' && ++started === 4) {
        stop.abort();
        halt.abort();
      }
    }, halt.signal);
    expect(run.interrupted).toBe(true);
    const cancelled = run.vms.filter((v) => v.attempts.some((a) => a.outcome === 'aborted'));
    expect(cancelled.length).toBeGreaterThan(0);
    for (const v of cancelled) {
      expect(v.status).toBe('left');
      expect(v.reason).toMatch(/^interrupted: aborted on the second interrupt; still running on the source/);
      expect(v.host).toBe(v.source);
      expect(v.attempts.map((a) => a.method)).toEqual(['live']);
    }
    // Every VM of the fleet runs exactly once, where the report says.
    const inv = await driver.inventory();
    if (!inv.ok) throw new Error(inv.detail);
    const seen = new Map<string, string[]>();
    for (const vm of inv.inventory.vms) seen.set(vm.name, [...(seen.get(vm.name) ?? []), vm.host]);
    for (const [, hosts] of seen) expect(hosts).toHaveLength(1);
    for (const v of run.vms.filter((x) => bp.moves.some((m) => m.vm === x.vm))) expect(seen.get(v.vm)).toEqual([v.host]);
  });
});
