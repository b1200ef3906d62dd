/**
 * Splitting one evacuation into shards: disjoint groups of sources, each with a disjoint pool of
 * destinations whose room is in proportion to what its sources must move. Pure: the fleet as
 * discovery saw it in, shards out; no I/O, no clock, no randomness (ties go by name).
 */
import { userError } from '../errors.ts';
import { demandOf, unmovable, type Inventory } from '../fleet/types.ts';
import { matchesDestinations } from '../plan/rules.ts';
import type { EvacuationPlan } from '../plan/plan-types.ts';
import { selected, type Settings } from '../plan/settings.ts';

/** How to cut: one shard per value of a host label (a failure domain), or N shards balanced by load. */
export type SplitBy = { label: string } | { shards: number };

/** What splitting needs to know of a source or a destination. */
export interface SplitHost {
  name: string;
  labels: Record<string, string>;
  /** Source: memory (MiB) its VMs that move claim. Destination: memory (MiB) it can still take under the plan. */
  mib: number;
}

export interface SplitInput {
  sources: SplitHost[];
  destinations: SplitHost[];
  /** Sources that must stay in one shard (their VMs share an affinity group). */
  together: string[][];
  /** Destinations that must go with a source (a VM there is assigned to them): destination -> source. */
  assigned: Map<string, string>;
}

export interface Shard {
  /** 1-based. */
  index: number;
  /** The label value its sources share (--by). */
  key?: string;
  sources: string[];
  destinations: string[];
  /** Memory its sources' moving VMs claim, MiB. */
  demandMib: number;
  /** Memory its destinations can take, MiB. */
  roomMib: number;
}

const MEM = 'memory_mib';

/** The facts the split needs from the fleet: what each source must move, what each destination can take. */
export function splitInput(plan: EvacuationPlan, settings: Settings, inventory: Inventory): SplitInput {
  const sourceNames = plan.sources ?? [];
  const isSource = new Set(sourceNames);
  const byName = new Map(inventory.hosts.map((h) => [h.name, h]));
  const missing = sourceNames.filter((s) => !byName.has(s));
  if (missing.length > 0) {
    const down = new Map(inventory.unreachable.map((u) => [u.host, u.detail]));
    throw userError(`source host(s) not in the fleet or not answering: ${missing.map((s) => (down.has(s) ? `${s} (${down.get(s)})` : s)).join(', ')}`, [], 'check the plan\'s sources against the fleet; a split needs every source to answer');
  }
  const pinned = new Set(settings.pinned);
  const moving = inventory.vms.filter((v) => isSource.has(v.host) && !unmovable(v.state) && selected(settings, v.name) && !pinned.has(v.name));
  const demand = new Map<string, number>();
  for (const v of moving) demand.set(v.host, (demand.get(v.host) ?? 0) + (demandOf(v)[MEM] ?? 0));
  const used = new Map<string, number>();
  for (const v of inventory.vms) if (v.state !== 'crashed') used.set(v.host, (used.get(v.host) ?? 0) + (demandOf(v)[MEM] ?? 0));
  const destinations = inventory.hosts
    // As discovery: a host another plan drains takes nothing.
    .filter((h) => matchesDestinations(plan, h.name, h.labels) && !(h.fence && h.fence.plan !== plan.name && h.fence.role === 'source'))
    .map((h) => {
      const limit = Math.max(0, (h.capacity[MEM] ?? 0) - (settings.reserve[MEM] ?? 0)) * (settings.overcommit[MEM] ?? 1) * settings.maxUtilization;
      return { name: h.name, labels: h.labels, mib: Math.max(0, limit - (used.get(h.name) ?? 0)) };
    });
  // Members of one affinity group move as one unit: their sources stay in one shard.
  const groups = new Map<string, Set<string>>();
  const join = (group: string, host: string) => groups.set(group, (groups.get(group) ?? new Set()).add(host));
  for (const v of inventory.vms) if (v.affinity && isSource.has(v.host)) join(`vm:${v.affinity}`, v.host);
  const hostOf = new Map(inventory.vms.map((v) => [v.name, v.host]));
  for (const g of settings.groups.filter((x) => x.policy === 'affinity')) {
    for (const m of g.members) if (isSource.has(hostOf.get(m) ?? '')) join(`plan:${g.name}`, hostOf.get(m)!);
  }
  const assigned = new Map<string, string>();
  const goesWith = (host: string, from: string) => {
    const other = assigned.get(host);
    if (other !== undefined && other !== from && !other.split('\n').includes(from)) assigned.set(host, `${other}\n${from}`);
    else if (other === undefined) assigned.set(host, from);
  };
  for (const [vm, host] of Object.entries(settings.assign)) {
    const from = hostOf.get(vm);
    if (from === undefined || !isSource.has(from)) continue;
    goesWith(host, from);
  }
  // A member of an affinity group that stays on a destination anchors the group there: that host
  // goes with the shard of the group's moving members, or they could never join it.
  const declared = new Map<string, string>();
  for (const g of settings.groups.filter((x) => x.policy === 'affinity')) for (const m of g.members) declared.set(m, `plan:${g.name}`);
  const groupOf = (v: { name: string; affinity?: string }) => (v.affinity ? `vm:${v.affinity}` : declared.get(v.name));
  const movingFrom = new Map<string, string>();
  for (const v of inventory.vms) {
    const g = groupOf(v);
    if (g && isSource.has(v.host)) movingFrom.set(g, v.host);
  }
  for (const v of inventory.vms) {
    const g = groupOf(v);
    const from = g ? movingFrom.get(g) : undefined;
    if (from !== undefined && !isSource.has(v.host)) goesWith(v.host, from);
  }
  return {
    sources: sourceNames.map((s) => ({ name: s, labels: byName.get(s)!.labels, mib: demand.get(s) ?? 0 })),
    destinations,
    together: [...groups.values()].filter((s) => s.size > 1).map((s) => [...s].sort()),
    assigned,
  };
}

/** Cut the sources into shards and give each a disjoint pool of destinations. Throws a user error (exit 2) for a cut that cannot be made. */
export function splitFleet(input: SplitInput, by: SplitBy): Shard[] {
  const clusters = clustersOf(input);
  let groups: { key?: string; sources: SplitHost[] }[];
  // Own labels only: a label named constructor is not Object's.
  const labelOf = (h: SplitHost) => ('label' in by && Object.hasOwn(h.labels, by.label) ? h.labels[by.label] : undefined);
  if ('label' in by) {
    const unlabelled = input.sources.filter((s) => labelOf(s) === undefined).map((s) => s.name);
    if (unlabelled.length > 0) throw userError(`${unlabelled.length} source(s) have no label '${by.label}': ${list(unlabelled)}`, [], `label every source with '${by.label}', or split with --shards N`);
    const byKey = new Map<string, SplitHost[]>();
    for (const s of input.sources) byKey.set(labelOf(s)!, [...byKey.get(labelOf(s)!) ?? [], s]);
    for (const c of clusters) {
      const keys = [...new Set(c.map((s) => labelOf(s)!))];
      if (keys.length > 1) throw userError(`sources ${list(c.map((s) => s.name))} hold VMs of one affinity group but have different '${by.label}' values (${list(keys)}); one shard cannot take them all`, [], 'split with --shards N, which keeps them together');
    }
    groups = [...byKey.keys()].sort(compare).map((key) => ({ key, sources: byKey.get(key)! }));
  } else {
    const n = by.shards;
    if (!Number.isInteger(n) || n < 1) throw userError(`--shards must be a whole number from 1 up (got ${n})`);
    if (n > input.sources.length) throw userError(`--shards ${n} is more than the plan's ${input.sources.length} source host(s)`, [], `give at most ${input.sources.length} shards`);
    if (n > clusters.length) throw userError(`--shards ${n}: the sources make only ${clusters.length} group(s) that can be separated (VMs of one affinity group keep their sources together)`, [], `give at most ${clusters.length} shards`);
    groups = balance(clusters, n).map((sources) => ({ sources }));
  }
  if (groups.length > input.destinations.length) {
    throw userError(`${groups.length} shards need at least ${groups.length} destination hosts; the plan has ${input.destinations.length}`, [], 'give fewer shards, or more destinations');
  }
  const shardOfSource = new Map<string, number>();
  groups.forEach((g, i) => g.sources.forEach((s) => shardOfSource.set(s.name, i)));
  const demand = groups.map((g) => sum(g.sources));
  const totalDemand = demand.reduce((a, b) => a + b, 0);
  const totalRoom = sum(input.destinations);
  // The room each shard should get: in proportion to its demand (equal shares when nothing moves).
  const target = demand.map((d) => (totalDemand > 0 ? (totalRoom * d) / totalDemand : totalRoom / groups.length));
  const pools: SplitHost[][] = groups.map(() => []);
  const room = groups.map(() => 0);
  const give = (i: number, d: SplitHost) => {
    pools[i].push(d);
    room[i] += d.mib;
  };
  const roomiest = (a: SplitHost, b: SplitHost) => b.mib - a.mib || compare(a.name, b.name);
  let free = [...input.destinations].sort(roomiest);
  // A destination a VM is assigned to, or where its affinity partner stays, goes with that VM's source.
  for (const d of free) {
    const from = input.assigned.get(d.name);
    if (from === undefined) continue;
    const shards = [...new Set(from.split('\n').map((s) => shardOfSource.get(s)!))];
    if (shards.length > 1) throw userError(`destination ${d.name} is assigned VMs, or holds affinity partners of VMs, of sources in different shards (${list(from.split('\n'))})`, [], 'assign those VMs to hosts of their own shard, or split so their sources share a shard');
    give(shards[0], d);
  }
  free = free.filter((d) => !input.assigned.has(d.name));
  // --by: a shard first takes destinations of its own failure domain, up to its share.
  if ('label' in by) {
    const shardOfKey = new Map(groups.map((g, i) => [g.key!, i]));
    free = free.filter((d) => {
      const i = shardOfKey.get(labelOf(d)!);
      if (i === undefined || room[i] >= target[i]) return true;
      give(i, d);
      return false;
    });
  }
  // Then the rest, roomiest first, each to the shard furthest below its share (a shard with none first);
  // hosts with no room left count only by number, so they spread evenly instead of piling onto one shard.
  for (const d of free) {
    let best = 0;
    for (let i = 1; i < groups.length; i++) if (before(i, best, d.mib > 0)) best = i;
    give(best, d);
  }
  // A shard its label's hosts left with none takes the least roomy host of the shard that has most.
  // Never one that must stay with its shard's VMs (assigned, or an affinity partner's host).
  const movable = (k: number) => pools[k].filter((d) => !input.assigned.has(d.name));
  for (let i = 0; i < groups.length; i++) {
    if (pools[i].length > 0) continue;
    const donors = pools.map((_, k) => k).filter((k) => pools[k].length > 1 && movable(k).length > 0);
    if (donors.length === 0) {
      throw userError(`${groups.length} shards need a destination each besides the hosts that must stay with their VMs (${list([...input.assigned.keys()])}); the plan has too few`, [], 'give fewer shards, or more destinations');
    }
    const donor = donors.reduce((best, k) => (pools[k].length > pools[best].length ? k : best), donors[0]);
    const d = [...movable(donor)].sort(roomiest).at(-1)!;
    pools[donor] = pools[donor].filter((x) => x !== d);
    room[donor] -= d.mib;
    give(i, d);
  }
  function before(i: number, j: number, byRoom: boolean): boolean {
    const key = (k: number) => [pools[k].length === 0 ? 0 : 1, byRoom ? room[k] - target[k] : pools[k].length] as const;
    const [ei, vi] = key(i);
    const [ej, vj] = key(j);
    return ei < ej || (ei === ej && vi < vj);
  }
  return groups.map((g, i) => ({
    index: i + 1,
    ...(g.key !== undefined ? { key: g.key } : {}),
    sources: input.sources.filter((s) => shardOfSource.get(s.name) === i).map((s) => s.name),
    destinations: pools[i].map((d) => d.name).sort(compare),
    demandMib: demand[i],
    roomMib: room[i],
  }));
}

/** Sources that must stay together (affinity), as clusters; every other source alone. */
function clustersOf(input: SplitInput): SplitHost[][] {
  const parent = new Map(input.sources.map((s) => [s.name, s.name]));
  const find = (x: string): string => {
    while (parent.get(x) !== x) x = parent.get(x)!;
    return x;
  };
  for (const g of input.together) for (const h of g.slice(1)) parent.set(find(h), find(g[0]));
  const out = new Map<string, SplitHost[]>();
  for (const s of input.sources) out.set(find(s.name), [...out.get(find(s.name)) ?? [], s]);
  return [...out.values()];
}

/** Longest processing time first: the heaviest cluster to the lightest shard (ties by name, then shard order). */
function balance(clusters: SplitHost[][], n: number): SplitHost[][] {
  const order = [...clusters].sort((a, b) => sum(b) - sum(a) || compare(a[0].name, b[0].name));
  const shards: SplitHost[][] = Array.from({ length: n }, () => []);
  const load = new Array<number>(n).fill(0);
  for (const c of order) {
    // Every shard gets a cluster before any gets two, so none is empty.
    let best = 0;
    for (let i = 1; i < n; i++) {
      const key = (j: number) => [shards[j].length === 0 ? 0 : 1, load[j]] as const;
      const [ei, li] = key(i);
      const [eb, lb] = key(best);
      if (ei < eb || (ei === eb && li < lb)) best = i;
    }
    shards[best].push(...c);
    load[best] += sum(c);
  }
  return shards;
}

const sum = (hosts: SplitHost[]) => hosts.reduce((s, h) => s + h.mib, 0);
/** Names in natural order (r2 before r10), the same on every machine. */
const collator = new Intl.Collator('en', { numeric: true });
const compare = (a: string, b: string) => collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
const list = (xs: string[]) => (xs.length > 12 ? `${xs.slice(0, 12).join(', ')} and ${xs.length - 12} more` : xs.join(', '));
