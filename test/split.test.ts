/**
 * split, pure (scripts/shard/): on random fleets, labels and shard counts, the shards' sources
 * partition the plan's, their destination pools are pairwise disjoint, non-empty and drawn from
 * the plan's, each shard plan passes the schema and the rules, affinity keeps sources together,
 * and a cut that cannot be made is a user error (exit 2).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EvacError } from '../scripts/errors.ts';
import { SimDriver } from '../scripts/fleet/sim/driver.ts';
import type { Inventory } from '../scripts/fleet/types.ts';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import { checkRules, matchesDestinations } from '../scripts/plan/rules.ts';
import { checkSchema } from '../scripts/plan/schema.ts';
import { settingsOf } from '../scripts/plan/settings.ts';
import { shardName, shardPlans } from '../scripts/shard/plans.ts';
import { splitFleet, splitInput, type SplitBy } from '../scripts/shard/split.ts';

const fleetArb = fc.record({
  hosts: fc.array(fc.record({ mem: fc.integer({ min: 8, max: 256 }), rack: fc.option(fc.constantFrom('r1', 'r2', 'r3', 'r10', '../x', 'a\nb'), { nil: undefined, freq: 15 }) }), { minLength: 2, maxLength: 24 }),
  vms: fc.array(fc.record({ on: fc.nat(), mem: fc.integer({ min: 1, max: 32 }), aff: fc.option(fc.constantFrom('g1', 'g2'), { nil: undefined, freq: 8 }) }), { maxLength: 60 }),
  sources: fc.uniqueArray(fc.nat(23), { minLength: 1, maxLength: 8 }),
  dest: fc.constantFrom('all', 'hosts', 'selector', 'exclude'),
  by: fc.oneof(fc.constant('rack'), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 14 })),
});
type Fleet = typeof fleetArb extends fc.Arbitrary<infer T> ? T : never;

function planOf(f: Fleet): EvacuationPlan {
  const hosts = f.hosts.map((h, i) => ({ name: `h${i}`, vcpu: 64, memory_mib: h.mem * 1024, disk_gib: 2000, labels: (h.rack === undefined ? {} : { rack: h.rack }) as Record<string, string> }));
  const sources = [...new Set(f.sources.map((i) => hosts[i % hosts.length].name))];
  const others = hosts.filter((h) => !sources.includes(h.name));
  const vms = f.vms.map((v, i) => ({ name: `vm-${i}`, host: hosts[v.on % hosts.length].name, vcpu: 1, memory_mib: v.mem * 512, ...(v.aff ? { affinity: v.aff } : {}) }));
  const destinations = f.dest === 'hosts' && others.length > 0 ? { hosts: others.filter((_, i) => i % 2 === 0).map((h) => h.name) as [string, ...string[]] }
    : f.dest === 'selector' ? { selector: { rack: 'r1' } }
      : f.dest === 'exclude' && others.length > 1 ? { exclude: [others[0].name] }
        : undefined;
  return { version: 1, name: 'region-with-a-rather-long-name-that-needs-shortening-for-shards', fleet: { driver: 'sim', sim: { hosts, vms } }, sources: sources as [string, ...string[]], ...(destinations ? { destinations } : {}) };
}

async function inventoryOf(plan: EvacuationPlan): Promise<Inventory> {
  const got = await new SimDriver(plan.fleet.sim!).inventory();
  if (!got.ok) throw new Error(got.detail);
  return got.inventory;
}

describe('split', () => {
  it('shards partition the sources, their destination pools are disjoint, and each is a valid plan (fast-check)', async () => {
    await fc.assert(fc.asyncProperty(fleetArb, async (f) => {
      const plan = planOf(f);
      // A plan the rules refuse is not split (loadPlan refuses it first).
      if (checkRules(plan).some((r) => r.severity === 'error')) return;
      const inventory = await inventoryOf(plan);
      const by: SplitBy = f.by === 'rack' ? { label: 'rack' } : { shards: f.by };
      const pool = inventory.hosts.filter((h) => matchesDestinations(plan, h.name, h.labels)).map((h) => h.name);
      let shards;
      try {
        shards = splitFleet(splitInput(plan, settingsOf(plan), inventory), by);
      } catch (e) {
        expect(e).toBeInstanceOf(EvacError);
        expect((e as EvacError).exitCode).toBe(2);
        expect((e as EvacError).message).toMatch(/no label 'rack'|more than the plan's|need at least|affinity group|affinity partners|need a destination each|can be separated/);
        // Without affinity, N shards are refused only when N exceeds the sources or the destinations.
        if ('shards' in by && !f.vms.some((v) => v.aff)) expect(by.shards > plan.sources!.length || by.shards > pool.length).toBe(true);
        return;
      }
      const sources = shards.flatMap((s) => s.sources);
      expect([...sources].sort()).toEqual([...plan.sources!].sort());
      const dests = shards.flatMap((s) => s.destinations);
      expect(new Set(dests).size).toBe(dests.length);
      for (const d of dests) expect(pool).toContain(d);
      for (const s of shards) {
        expect(s.sources.length).toBeGreaterThan(0);
        expect(s.destinations.length).toBeGreaterThan(0);
        if ('label' in by) expect(new Set(s.sources.map((h) => inventory.hosts.find((x) => x.name === h)!.labels.rack))).toEqual(new Set([s.key]));
      }
      if ('shards' in by) expect(shards).toHaveLength(by.shards);
      // VMs of one affinity group: their sources in one shard.
      for (const g of ['g1', 'g2']) {
        const hosts = new Set(inventory.vms.filter((v) => v.affinity === g && plan.sources!.includes(v.host)).map((v) => v.host));
        expect(new Set(shards.filter((s) => s.sources.some((h) => hosts.has(h))).map((s) => s.index)).size).toBeLessThanOrEqual(1);
        // A partner staying on a destination: that host is in the moving members' shard, or they could not join it.
        const shard = shards.find((s) => s.sources.some((h) => hosts.has(h)));
        const anchors = inventory.vms.filter((v) => v.affinity === g && !plan.sources!.includes(v.host) && pool.includes(v.host)).map((v) => v.host);
        if (shard) for (const a of anchors) expect(shard.destinations, `${g} stays on ${a}`).toContain(a);
      }
      const vmsOn = new Map<string, string[]>();
      for (const v of inventory.vms) vmsOn.set(v.host, [...vmsOn.get(v.host) ?? [], v.name]);
      const plans = shardPlans(plan, shards, vmsOn, 'shards/region.fleet.json');
      expect(new Set(plans.map((p) => p.name)).size).toBe(plans.length);
      for (const p of plans) {
        expect(checkSchema(p)).toEqual([]);
        expect(checkRules(p).filter((r) => r.severity === 'error')).toEqual([]);
        expect(p.fleet.sim!.state_file).toBe('shards/region.fleet.json');
      }
    }), { numRuns: 400 });
  });

  it('balances N shards by the memory to move, and gives each room in proportion', async () => {
    const hosts = [...Array(12).keys()].map((i) => ({ name: `h${i}`, vcpu: 64, memory_mib: 262144, disk_gib: 2000 }));
    const vms = [...Array(48).keys()].map((i) => ({ name: `vm-${i}`, host: `h${i % 6}`, vcpu: 1, memory_mib: 4096 * (1 + (i % 6)) }));
    const plan: EvacuationPlan = { version: 1, name: 'p', fleet: { driver: 'sim', sim: { hosts, vms } }, sources: ['h0', 'h1', 'h2', 'h3', 'h4', 'h5'] };
    const shards = splitFleet(splitInput(plan, settingsOf(plan), await inventoryOf(plan)), { shards: 3 });
    const demand = shards.map((s) => s.demandMib);
    expect(Math.max(...demand) - Math.min(...demand)).toBeLessThanOrEqual(4096 * 6);
    expect(shards.map((s) => s.destinations.length)).toEqual([2, 2, 2]);
  });

  it('refuses a label some sources lack, naming them, and more shards than sources', async () => {
    const hosts = ['a', 'b', 'c', 'd'].map((name, i) => ({ name, vcpu: 8, memory_mib: 65536, disk_gib: 100, labels: (i === 1 ? {} : { rack: 'r1' }) as Record<string, string> }));
    const plan: EvacuationPlan = { version: 1, name: 'p', fleet: { driver: 'sim', sim: { hosts, vms: [] } }, sources: ['a', 'b'] };
    const input = splitInput(plan, settingsOf(plan), await inventoryOf(plan));
    expect(() => splitFleet(input, { label: 'rack' })).toThrow(/1 source\(s\) have no label 'rack': b$/);
    expect(() => splitFleet(input, { shards: 3 })).toThrow(/--shards 3 is more than the plan's 2 source host\(s\)/);
    expect(splitFleet(input, { shards: 2 }).map((s) => s.destinations)).toEqual([['c'], ['d']]);
  });

  it('names shards within the schema, whatever the plan name', () => {
    expect(shardName('region', 3, 20)).toBe('region-shard-03');
    expect(shardName('r', 7, 120)).toBe('r-shard-007');
    const long = shardName('x'.repeat(63), 1, 2);
    expect(long).toHaveLength(63);
    expect(long).toMatch(/^[a-z0-9][a-z0-9._-]{0,62}$/);
  });
});
