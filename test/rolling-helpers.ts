/** What the rolling tests share: a generated cluster's rolling plan, and what a roll left (moves from the waves' journals, the simulated fleet). */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readState } from '../scripts/fleet/sim/state.ts';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import { readJournal } from '../scripts/runner/journal.ts';

export function cluster(hosts: number, vms: number, groups: number, seed: number, rolling: Record<string, unknown> = {}): EvacuationPlan {
  return {
    version: 1, name: 'roll', kind: 'rolling',
    fleet: { driver: 'sim', sim: { seed, generate: { hosts, vms, anti_affinity_groups: groups } } },
    rolling: { selector: {}, failure_domain: 'rack', maintenance: { simulate: { duration_s: 600, hypervisor_version: '9.9.0' } }, checks: { hypervisor_version: '9.9.0' }, ...rolling },
    placement: { max_utilization: 0.9 },
    migration: { mode: 'live', concurrency: { total: 8, per_source: 2, per_destination: 2 } },
  } as EvacuationPlan;
}

/** Every live migration the waves' journals say ended well, per VM (the driver-level record, not the roll's report). */
export function movesByVm(reports: string): Map<string, number> {
  const out = new Map<string, number>();
  const root = join(reports, 'roll.roll');
  if (!existsSync(root)) return out;
  for (const w of readdirSync(root)) {
    const j = join(root, w, 'roll.journal.jsonl');
    if (!existsSync(j)) continue;
    for (const l of readJournal(j)) if (l.kind === 'move-end' && l.outcome === 'ok') out.set(l.vm, (out.get(l.vm) ?? 0) + 1);
  }
  return out;
}

/** The simulated fleet as the roll left it: each VM's host, each host's version and fence. */
export function fleetAfter(reports: string) {
  const { saved } = readState(join(reports, 'roll.fleet.json'));
  return saved;
}
