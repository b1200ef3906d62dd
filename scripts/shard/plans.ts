/**
 * Shard plans: the original plan with its own sources and an explicit destination list, a name
 * of its own, and everything else kept (fleet, placement, migration). Pure: plans in, plans out.
 */
import { userError } from '../errors.ts';
import type { EvacuationPlan } from '../plan/plan-types.ts';
import { globToRegExp } from '../plan/settings.ts';
import type { Shard } from './split.ts';

/** Plan names are at most 63 characters (the schema); the shard's suffix always fits. */
const NAME_MAX = 63;

/** The name of shard i of n: `<plan>-shard-01`, the plan's name shortened where needed. Safe as a file name (the schema's pattern). */
export function shardName(plan: string, index: number, count: number): string {
  const suffix = `-shard-${String(index).padStart(Math.max(2, String(count).length), '0')}`;
  return `${plan.slice(0, NAME_MAX - suffix.length)}${suffix}`;
}

/**
 * One plan per shard. `vmsOn` lists the VMs on each source (to keep the `vms` patterns and
 * `placement.assign` entries that concern the shard); `stateFile` is the simulated fleet's shared
 * state file, for a sim plan that names none.
 */
export function shardPlans(plan: EvacuationPlan, shards: Shard[], vmsOn: Map<string, string[]>, stateFile?: string): EvacuationPlan[] {
  return shards.map((s) => {
    const name = shardName(plan.name, s.index, shards.length);
    const vms = s.sources.flatMap((h) => vmsOn.get(h) ?? []);
    const out: EvacuationPlan = structuredClone(plan);
    out.name = name;
    out.description = `Shard ${s.index} of ${shards.length} of plan ${plan.name}${s.key !== undefined ? ` (${s.key})` : ''}${plan.description ? `: ${plan.description}` : ''}`;
    out.sources = s.sources as [string, ...string[]];
    out.destinations = { hosts: s.destinations as [string, ...string[]] };
    if (out.fleet.driver === 'sim' && stateFile !== undefined && !out.fleet.sim?.state_file) out.fleet.sim = { ...out.fleet.sim, state_file: stateFile };
    if (plan.vms) {
      // A pattern that selects no VM on a plan's sources is refused: each shard keeps those that select some of its own.
      const kept = plan.vms.filter((p) => vms.some((v) => globToRegExp(p).test(v)));
      if (kept.length === 0) throw userError(`shard ${s.index} (${s.sources.join(', ')}) holds no VM the plan's vms select`, [], 'split into fewer shards, or name only sources that hold selected VMs');
      out.vms = kept as [string, ...string[]];
    }
    const assign = plan.placement?.assign;
    if (assign && out.placement) {
      const mine = new Set(vms);
      out.placement.assign = Object.fromEntries(Object.entries(assign).filter(([vm]) => mine.has(vm)));
    }
    // Name and description first, as people write plans.
    const { version, name: _name, description, ...rest } = out;
    return { version, name, description, ...rest };
  });
}
