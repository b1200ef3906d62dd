/**
 * Batch placement: every VM of every source host onto the allowed destinations at once.
 * Pure: data in, data out, seeded, and its search budget is counted work, not time, so the same
 * input always gives the same output. Affinity groups move as one unit.
 *
 * 0. A (nearly) full fleet: the hosts that waiting units fill exactly get them first, by
 *    patterns of few kinds of VM or by exact sets and an exact cover (exact.ts exactFills).
 * 1. First pass, most constrained and largest units first: pack puts each on the used host it
 *    fills best (opening the roomiest host only when none fits), spread on the host whose
 *    highest utilization stays lowest. pack also starts from first-fit decreasing over the
 *    hosts emptiest first, and, where units still wait, from each unit on the host whose room is
 *    most aligned with it; a start is kept where it does better.
 * 2. Units left over go through the ejection search (repair.ts) until every VM that can be
 *    placed is, or half the effort is spent; still left, an integer program (HiGHS, mip.ts)
 *    says how many units of each kind go on each host, around the waiting units first, then
 *    over every host where that is small; taken where it places more.
 * 3. pack: empty hosts one at a time while the lower bound allows (tighten.ts); spread: move
 *    units off the most utilized host while that lowers it.
 * 4. The result is written back through the Ledger, which checks every rule once more, and
 *    each unit still left gets its reasons per destination.
 */
import { EvacError } from '../errors.ts';
import type { Host, Vm } from '../fleet/types.ts';
import { schemaDefault } from '../plan/defaults.ts';
import { seeded } from '../random.ts';
import { exactFills, exactRepack, packFewer } from './exact.ts';
import { explain, type ReasonGroup } from './explain.ts';
import { mipRepack } from './mip.ts';
import { greedy, hostSet } from './greedy.ts';
import { Ledger, sumDemand, type LedgerSettings } from './ledger.ts';
import { Model } from './model.ts';
import { placedCount, repair } from './repair.ts';
import { minimumSlack } from './slack.ts';
import { lowerBound, packTighter, receivingHosts, spreadOut } from './tighten.ts';

export interface PlacementInput {
  /** VMs to move. */
  vms: Vm[];
  /** Allowed destinations. */
  destinations: Host[];
  /** Source hosts (for hypervisor version checks). */
  sources: Host[];
  /** VMs that stay where they are (on destinations or pinned), counted for room and groups. */
  residents: Vm[];
  settings: LedgerSettings & {
    policy: 'pack' | 'spread';
    seed: number;
    /** Work the improving searches may spend, in unit-host pairs weighed (deterministic, unlike a time limit); default: the plan schema's placement.effort. */
    effort?: number;
    /** false: no MIP step (mip.ts), the searches alone (benchmarks and tests compare the two). */
    mip?: boolean;
  };
  /** (vm, host) pairs to avoid, with why (from preflight). */
  avoid?: { vm: string; host: string; why: string }[];
  /** VMs that may go to one host only (placement.assign), with why every other host is refused. */
  only?: { vm: string; host: string; why: string }[];
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
  /** pack: no placement of the VMs placed gives them to fewer hosts (equal to destinationsUsed: proven fewest). */
  lowerBound?: number;
  /** VMs were left and the MIP step proved that no placement places more of them (mip.ts). */
  mostPlaced?: true;
}

/** Build the books for an input: residents settled, avoidances recorded. */
export function ledgerFor(input: PlacementInput): Ledger {
  const ledger = new Ledger(input.destinations, new Map(input.sources.map((h) => [h.name, h])), [...input.vms, ...input.residents], input.settings);
  for (const vm of input.residents) ledger.settle(vm);
  for (const a of input.avoid ?? []) ledger.avoid(a.vm, a.host, a.why);
  for (const o of input.only ?? []) ledger.only(o.vm, o.host, o.why);
  return ledger;
}

export function place(input: PlacementInput): PlacementResult {
  const ledger = ledgerFor(input);
  const units = unitsOf(input.vms, ledger);
  const m = new Model(input.destinations, units, ledger);
  const rng = seeded(input.settings.seed);
  const policy = input.settings.policy;

  // Most constrained first (members of larger anti-affinity groups), then larger units; equal
  // keys are ordered by the seed, not by input order.
  const groupSize = new Map<string, number>();
  for (const vm of [...input.vms, ...input.residents]) for (const g of ledger.antiGroups(vm.name)) groupSize.set(g, (groupSize.get(g) ?? 0) + 1);
  const need = units.map((u) => Math.max(0, ...u.flatMap((vm) => ledger.antiGroups(vm.name).map((g) => groupSize.get(g) ?? 0))));
  const tie = units.map(() => rng.int(0, 2 ** 30));
  const hopeful = [...units.keys()].filter((u) => m.couldEverFit(u));
  hopeful.sort((a, b) => need[b] - need[a] || m.weight[b] - m.weight[a] || tie[a] - tie[b]);

  let budget = input.settings.effort ?? DEFAULT_EFFORT;
  // First-fit decreasing's order (the floor below): memory, else the first resource.
  const memDim = Math.max(0, ledger.dims.indexOf('memory_mib'));
  const inputOrder = new Map(input.vms.map((v, i) => [v.name, i]));
  // Units that may go to one host only (an affinity group whose staying members are there) go there
  // first, largest first: any other VM could take that room, they can take none other.
  for (const u of hopeful) if (m.at[u] < 0 && m.eligibleList[u].length === 1 && m.fits(u, m.eligibleList[u][0])) m.insert(u, m.eligibleList[u][0]);
  // A (nearly) full fleet: hosts that a few waiting units fill exactly get them first (exact.ts).
  budget -= exactFills(m, hopeful, budget);
  let left = greedy(m, hopeful.filter((u) => m.at[u] < 0), policy);
  // pack: plain first-fit decreasing over the hosts emptiest first is a start too, kept where it
  // places more VMs, or as many on fewer receiving hosts (on busy fleets it often does).
  if (policy === 'pack') {
    budget -= emptiestFirst(m, hopeful, units, inputOrder, memDim, false);
    // And the same with the units that may use fewest hosts first (a CPU generation only some hosts run).
    budget -= emptiestFirst(m, hopeful, units, inputOrder, memDim, true);
    // And each unit, largest first, onto the host whose room points most its way (fleets whose VMs differ in shape: two memory-to-vCPU ratios).
    if (hopeful.some((u) => m.at[u] < 0)) budget -= aligned(m, hopeful);
    left = hopeful.filter((u) => m.at[u] < 0);
  }
  if (left.length > 0) {
    const all = hostSet(new Uint8Array(m.H).fill(1));
    const everyone = hopeful.reduce((s, u) => s + units[u].length, 0);
    const r = repair(m, left, all, Math.ceil(budget / 2), (placed) => placed >= everyone, rng);
    budget -= r.work;
  }
  // Still waiting: how many of each kind of unit on each host, as one integer program (mip.ts).
  // Its nodes are the plan's effort's (not what is left of it): the same plan, the same program.
  let proven = false;
  if (input.settings.mip !== false) {
    // Around the waiting units first (the hosts not filled exactly); then, on small fleets, over every host (which may prove it places the most).
    for (const around of [true, false]) {
      if (!hopeful.some((u) => m.at[u] < 0)) break;
      const r = mipRepack(m, hopeful, input.settings.effort ?? DEFAULT_EFFORT, around);
      budget -= r.work;
      proven = r.optimal;
    }
  }
  if (policy === 'pack') {
    // Units still waiting: rebuild by minimum bin slack (kept only if it places more), then tighten.
    if (hopeful.some((u) => m.at[u] < 0) && budget > 0) budget -= minimumSlack(m, Math.ceil(budget / 2));
    // Still waiting: exact repacks of the hosts with room (exact.ts).
    if (hopeful.some((u) => m.at[u] < 0) && budget > 0) budget -= exactRepack(m, Math.ceil((budget * 3) / 4), rng).work;
    budget -= packTighter(m, budget, rng);
    // Small placements: one host fewer, by the exact search, with what the tightening left (exact.ts).
    if (budget > 0) budget -= packFewer(m, Math.min(FEWER_BUDGET, budget), () => lowerBound(m));
    // Still waiting: plain first-fit decreasing as a floor. Where it places more, its placement
    // (tightened with a quarter of the effort more) is kept: pack never leaves a VM that it would move.
    if (ffdFloor(m, hopeful, units, inputOrder, memDim)) packTighter(m, Math.ceil((input.settings.effort ?? DEFAULT_EFFORT) / 4), rng);
  } else {
    if (hopeful.some((u) => m.at[u] < 0) && budget > 0) budget -= exactRepack(m, Math.ceil(budget / 2), rng).work;
    // The same floor for spread, then the aligned start where VMs still wait; spreadOut evens out whichever is kept.
    ffdFloor(m, hopeful, units, inputOrder, memDim);
    if (hopeful.some((u) => m.at[u] < 0)) aligned(m, hopeful);
    spreadOut(m, budget);
  }
  // Room the second pass freed goes to whatever still waits, so every unit left has a reason.
  greedy(m, hopeful.filter((u) => m.at[u] < 0), policy);
  const result = resultOf(m, input, ledger);
  // Proven for the program's optimum; the steps after it may only have placed more (then none is left).
  return { ...result, ...(policy === 'pack' ? { lowerBound: lowerBound(m) } : {}), ...(proven && result.unplaced.length > 0 ? { mostPlaced: true as const } : {}) };
}

/** Each unit in turn onto the first of its hosts (in the order given) that takes it; returns the work spent (unit-host pairs weighed). */
function firstFit(m: Model, order: number[], hostsOf: (u: number) => ArrayLike<number>): number {
  let work = 0;
  for (const u of order) {
    const hosts = hostsOf(u);
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i];
      work++;
      if (m.eligible[u][h] === 1 && m.apart(u, h) && m.room(u, h)) {
        m.insert(u, h);
        break;
      }
    }
  }
  return work;
}

/**
 * Where units still wait: plain first-fit decreasing (memory, then input order) over each unit's
 * hosts in order, from scratch; its placement is kept where it places more (true), else the
 * model is restored.
 */
function ffdFloor(m: Model, hopeful: number[], units: Vm[][], inputOrder: Map<string, number>, memDim: number): boolean {
  if (!hopeful.some((u) => m.at[u] < 0)) return false;
  const ours = m.snapshot();
  const placed = placedCount(m);
  for (const u of hopeful) m.remove(u);
  firstFit(m, [...hopeful].sort((a, b) => m.dem[b * m.D + memDim] - m.dem[a * m.D + memDim] || inputOrder.get(units[a][0].name)! - inputOrder.get(units[b][0].name)!), (u) => m.eligibleList[u]);
  if (placedCount(m) > placed) return true;
  m.restore(ours);
  return false;
}

/**
 * First-fit decreasing (memory, then the other resources, then input order; with
 * constrainedFirst, the units that may use fewest hosts before the others) over the hosts by free
 * memory beside their residents, most first. Its placement replaces the model's where it places
 * more VMs, or as many on fewer receiving hosts. Returns the work spent.
 */
function emptiestFirst(m: Model, hopeful: number[], units: Vm[][], inputOrder: Map<string, number>, memDim: number, constrainedFirst: boolean): number {
  const before = placedCount(m);
  const receivingBefore = receivingHosts(m);
  const saved = m.snapshot();
  for (const u of hopeful) m.remove(u);
  const free = (h: number) => m.lim[h * m.D + memDim] - m.residentLoad(h, memDim);
  const hosts = [...Array(m.H).keys()].map((h) => ({ h, f: free(h) })).sort((a, b) => b.f - a.f || a.h - b.h).map((x) => x.h);
  // Memory first, then the other resources in turn (vCPU among them), then input order.
  const larger = (a: number, b: number) => {
    if (constrainedFirst && m.eligibleList[a].length !== m.eligibleList[b].length) return m.eligibleList[a].length - m.eligibleList[b].length;
    const dm = m.dem[b * m.D + memDim] - m.dem[a * m.D + memDim];
    if (dm !== 0) return dm;
    for (let d = 0; d < m.D; d++) if (m.dem[b * m.D + d] !== m.dem[a * m.D + d]) return m.dem[b * m.D + d] - m.dem[a * m.D + d];
    return inputOrder.get(units[a][0].name)! - inputOrder.get(units[b][0].name)!;
  };
  const work = m.H + hopeful.length + firstFit(m, [...hopeful].sort(larger), () => hosts);
  const placed = placedCount(m);
  if (placed > before || (placed === before && receivingHosts(m) < receivingBefore)) return work;
  m.restore(saved);
  return work;
}

/**
 * Each unit, largest first, onto the host whose free room is most aligned with its demand (the
 * cosine of the two, each resource over its mean host limit), as in Panigrahy et al.'s
 * dot-product heuristics: a host whose room is mostly memory takes the memory-heavy units. It
 * spreads, so its placement replaces the model's only where it places more VMs.
 * Returns the work spent.
 */
function aligned(m: Model, hopeful: number[]): number {
  const { D } = m;
  const before = placedCount(m);
  const saved = m.snapshot();
  for (const u of hopeful) m.remove(u);
  let work = hopeful.length;
  for (const u of [...hopeful].sort((a, b) => m.weight[b] - m.weight[a] || a - b)) {
    let best = -1;
    let bestCos = -Infinity;
    for (const h of m.eligibleList[u]) {
      work++;
      if (!m.apart(u, h) || !m.room(u, h)) continue;
      let dot = 0;
      let dd = 0;
      let rr = 0;
      for (let d = 0; d < D; d++) {
        if (m.scale[d] <= 0) continue;
        const a = m.dem[u * D + d] / m.scale[d];
        const r = (m.lim[h * D + d] - m.load[h * D + d]) / m.scale[d];
        dot += a * r;
        dd += a * a;
        rr += r * r;
      }
      const cos = dd > 0 && rr > 0 ? dot / Math.sqrt(dd * rr) : 0;
      if (cos > bestCos + 1e-12) [best, bestCos] = [h, cos];
    }
    if (best >= 0) m.insert(u, best);
  }
  if (placedCount(m) > before) return work;
  m.restore(saved);
  return work;
}

/** Work the exact search for one host fewer may spend at most (about half a second). */
const FEWER_BUDGET = 8_000_000;

/** Work (unit-host pairs weighed) the searches may spend by default (under a second on a small machine): the plan's default. */
const DEFAULT_EFFORT = schemaDefault<number>('/definitions/Placement/properties/effort');

/** Write the model's assignment back through the ledger (which checks every rule again) and explain the rest. */
function resultOf(m: Model, input: PlacementInput, ledger: Ledger): PlacementResult {
  const assignments: Assignment[] = [];
  const unplaced: Unplaced[] = [];
  const receiving = new Set<number>();
  for (let u = 0; u < m.U; u++) {
    const h = m.at[u];
    if (h < 0) continue;
    receiving.add(h);
    for (const vm of m.units[u]) {
      const why = ledger.refuse([vm], m.hosts[h]);
      if (why) throw new EvacError(`placement broke a rule putting ${vm.name} on ${m.hosts[h].name}: ${JSON.stringify(why)}`, 'internal');
      ledger.commit(vm, m.hosts[h].name);
      assignments.push({ vm: vm.name, source: vm.host, destination: m.hosts[h].name });
    }
  }
  // The books no longer change: VMs alike in everything a refusal looks at (CPU model, source
  // hypervisor, avoided hosts, demand, no group) get the same reasons, worked out once.
  const alike = new Map<string, ReasonGroup[]>();
  for (let u = 0; u < m.U; u++) {
    if (m.at[u] >= 0) continue;
    const unit = m.units[u];
    const demand = sumDemand(unit);
    const key = unit.length === 1 && ledger.antiGroups(unit[0].name).length === 0 && !ledger.affinityGroup(unit[0].name)
      ? `${ledger.staticKey(unit[0])}|${ledger.dims.map((k) => demand[k] ?? 0).join(',')}`
      : undefined;
    const known = key === undefined ? undefined : alike.get(key);
    const reasons = known ?? (m.torn[u] ? [{ ...torn, hosts: input.destinations.map((h) => h.name) }] : explain(unit, input.destinations, ledger, demand));
    if (key !== undefined && !known) alike.set(key, reasons);
    for (const vm of unit) unplaced.push({ vm: vm.name, source: vm.host, reasons });
  }
  assignments.sort((a, b) => a.vm.localeCompare(b.vm));
  unplaced.sort((a, b) => a.vm.localeCompare(b.vm));
  return { assignments, unplaced, destinationsUsed: receiving.size };
}

const torn: Omit<ReasonGroup, 'hosts'> = { kind: 'anti-affinity', text: 'its affinity group holds two members of one anti-affinity group, so no host can take it' };

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

/**
 * Placement with preferred destinations (placement.prefer): a first placement onto those alone,
 * then what they could not take onto every destination, with the first pass's VMs counted where
 * they landed. A VM goes to a host outside prefer only when the preferred ones cannot take it
 * under every rule; the reasons of one left unplaced are those of the second pass (all hosts).
 */
export function placePreferring(input: PlacementInput, prefer: readonly string[]): PlacementResult {
  const wanted = new Set(prefer);
  const first = input.destinations.filter((h) => wanted.has(h.name));
  if (first.length === 0 || first.length === input.destinations.length) return place(input);
  const a = place({ ...input, destinations: first, avoid: (input.avoid ?? []).filter((x) => wanted.has(x.host)) });
  // A bound over the preferred hosts alone says nothing of all of them.
  delete a.lowerBound;
  delete a.mostPlaced;
  if (a.unplaced.length === 0) return a;
  const left = new Set(a.unplaced.map((u) => u.vm));
  const byName = new Map(input.vms.map((v) => [v.name, v]));
  const landed = a.assignments.map((x) => ({ ...byName.get(x.vm)!, host: x.destination }));
  const b = place({ ...input, vms: input.vms.filter((v) => left.has(v.name)), residents: [...input.residents, ...landed] });
  const assignments = [...a.assignments, ...b.assignments].sort((x, y) => x.vm.localeCompare(y.vm));
  return { assignments, unplaced: b.unplaced, destinationsUsed: new Set(assignments.map((x) => x.destination)).size };
}
