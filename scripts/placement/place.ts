/**
 * Batch placement: every VM of every source host onto the allowed destinations at once.
 * Pure: data in, data out, seeded. Decreasing order by normalized size; policy pack puts each
 * unit on the used host it fills best (opening the roomiest host only when none fits), policy
 * spread on the host whose highest utilization stays lowest. Affinity groups move as one unit.
 */
import type { Host, Vm } from '../fleet/types.ts';
import { seeded } from '../random.ts';
import { chooseHost, sizerFor } from './choose.ts';
import { explain, type ReasonGroup } from './explain.ts';
import { Ledger, sumDemand, type LedgerSettings } from './ledger.ts';

export interface PlacementInput {
  /** VMs to move. */
  vms: Vm[];
  /** Allowed destinations. */
  destinations: Host[];
  /** Source hosts (for hypervisor version checks). */
  sources: Host[];
  /** VMs that stay where they are (on destinations or pinned), counted for room and groups. */
  residents: Vm[];
  settings: LedgerSettings & { policy: 'pack' | 'spread'; seed: number };
  /** (vm, host) pairs to avoid, with why (from preflight). */
  avoid?: { vm: string; host: string; why: string }[];
}

export interface Assignment {
  vm: string;
  source: string;
  destination: string;
}

export interface Unplaced {
  vm: string;
  source: string;
  reasons: ReasonGroup[];
}

export interface PlacementResult {
  assignments: Assignment[];
  unplaced: Unplaced[];
  /** Destination hosts that receive at least one VM. */
  destinationsUsed: number;
}

/** Build the books for an input: residents settled, avoidances recorded. */
export function ledgerFor(input: PlacementInput): Ledger {
  const ledger = new Ledger(input.destinations, new Map(input.sources.map((h) => [h.name, h])), [...input.vms, ...input.residents], input.settings);
  for (const vm of input.residents) ledger.settle(vm);
  for (const a of input.avoid ?? []) ledger.avoid(a.vm, a.host, a.why);
  return ledger;
}

export function place(input: PlacementInput): PlacementResult {
  const ledger = ledgerFor(input);
  const units = unitsOf(input.vms, ledger);
  const size = sizerFor(ledger, input.destinations);
  // Seeded shuffle first, so equal-sized units are ordered by the seed, not by input order.
  const rng = seeded(input.settings.seed);
  // Most constrained first: members of larger anti-affinity groups, then larger units.
  const groupSize = new Map<string, number>();
  for (const vm of [...input.vms, ...input.residents]) for (const g of ledger.antiGroups(vm.name)) groupSize.set(g, (groupSize.get(g) ?? 0) + 1);
  const spreadNeed = (u: Vm[]) => Math.max(0, ...u.flatMap((vm) => ledger.antiGroups(vm.name).map((g) => groupSize.get(g) ?? 0)));
  const keyed = units.map((u) => ({ u, demand: sumDemand(u), need: spreadNeed(u), tie: rng.int(0, 2 ** 30) }));
  keyed.sort((a, b) => b.need - a.need || size(b.demand) - size(a.demand) || a.tie - b.tie);

  const opened: string[] = [];
  const isOpen = new Set<string>();
  const assignments: Assignment[] = [];
  const unplaced: Unplaced[] = [];
  for (const { u, demand } of keyed) {
    const host = chooseHost(ledger, u, input.destinations, input.settings.policy, isOpen, size);
    if (!host) {
      for (const vm of u) unplaced.push({ vm: vm.name, source: vm.host, reasons: explain(u, input.destinations, ledger, demand) });
      continue;
    }
    for (const vm of u) {
      ledger.commit(vm, host.name);
      assignments.push({ vm: vm.name, source: vm.host, destination: host.name });
    }
    if (!isOpen.has(host.name)) {
      isOpen.add(host.name);
      opened.push(host.name);
    }
  }
  assignments.sort((a, b) => a.vm.localeCompare(b.vm));
  unplaced.sort((a, b) => a.vm.localeCompare(b.vm));
  return { assignments, unplaced, destinationsUsed: opened.length };
}

/** Moving VMs grouped into units: an affinity group's moving members travel together. */
function unitsOf(vms: Vm[], ledger: Ledger): Vm[][] {
  const byGroup = new Map<string, Vm[]>();
  const units: Vm[][] = [];
  for (const vm of [...vms].sort((a, b) => a.name.localeCompare(b.name))) {
    const g = ledger.affinityGroup(vm.name);
    if (!g) units.push([vm]);
    else if (byGroup.has(g)) byGroup.get(g)!.push(vm);
    else {
      const unit = [vm];
      byGroup.set(g, unit);
      units.push(unit);
    }
  }
  return units;
}
