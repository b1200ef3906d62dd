/**
 * Minimum bin slack (Gupta and Ho, 1999), for what the other searches leave over: the placement
 * is rebuilt host by host, each host given the set of units that fills it best (least room left,
 * weighed per resource), found by a depth-first search that always takes the largest unit left
 * and prunes on room in every resource. On fleets whose VMs fill the hosts exactly, a set with no
 * room left is found host after host, where one-at-a-time heuristics strand the last VMs.
 *
 * Counted work, not time: each node of the searches counts. The rebuilt placement is kept only
 * when it places more VMs than the one it started from; otherwise the model is restored.
 */
import type { Model } from './model.ts';
import { placedCount } from './repair.ts';

const EPS = 1e-9;
/** Nodes one host's search may visit before it takes the best set found so far. */
const NODES_PER_HOST = 60_000;

/** Rebuild by minimum bin slack; returns the work spent. Affinity groups are units already; anti-affinity holds within each host's set and against what stays on the host. */
export function minimumSlack(m: Model, budget: number): number {
  const before = placedCount(m);
  const saved = m.snapshot();
  const { D } = m;
  // Every unit is rebuilt, members of anti-affinity groups too: a set never holds two members of
  // a group, nor one whose group already has a member on the host (fleets where most VMs are in
  // groups of a few left this pass nothing to move).
  const free: number[] = [];
  for (let u = 0; u < m.U; u++) if (!m.torn[u] && m.eligibleList[u].length > 0) free.push(u);
  if (free.length === 0) return 0;
  for (const u of free) m.remove(u);
  // Largest first (by the model's weight), so each search starts from what is hardest to place.
  free.sort((a, b) => m.weight[b] - m.weight[a] || a - b);
  const waiting = new Uint8Array(m.U);
  for (const u of free) waiting[u] = 1;
  let left = free.length;
  let work = 0;
  // Hosts by room (most first): the big ones take the big units.
  const hosts = [...Array(m.H).keys()].sort((a, b) => room(m, b) - room(m, a) || a - b);
  const rest = new Float64Array(D);
  for (const [i, h] of hosts.entries()) {
    if (left === 0 || work >= budget) break;
    for (let d = 0; d < D; d++) rest[d] = m.lim[h * D + d] - m.load[h * D + d];
    const cands = free.filter((u) => waiting[u] && m.eligible[u][h] === 1 && m.apart(u, h) && fitsIn(m, u, rest));
    if (cands.length === 0) continue;
    // No host may take more than its share of what is left, so that the last hosts get their turn.
    const found = bestSet(m, cands, rest, Math.min(NODES_PER_HOST, Math.ceil((budget - work) / (hosts.length - i))));
    work += found.nodes;
    for (const u of found.set) {
      m.insert(u, h);
      waiting[u] = 0;
      left--;
    }
  }
  if (placedCount(m) > before) return work;
  m.restore(saved);
  return work;
}

/** Free room on h beside what it holds, in mean hosts summed over resources. */
function room(m: Model, h: number): number {
  let s = 0;
  for (let d = 0; d < m.D; d++) if (m.scale[d] > 0) s += (m.lim[h * m.D + d] - m.load[h * m.D + d]) / m.scale[d];
  return s;
}

function fitsIn(m: Model, u: number, rest: Float64Array): boolean {
  for (let d = 0; d < m.D; d++) if (m.dem[u * m.D + d] > rest[d] + EPS) return false;
  return true;
}

/**
 * The set of candidates (largest first) that leaves the least room, the largest candidate always in it
 * (as in Gupta and Ho): depth-first, pruned on room in every resource, stopped at no room left or
 * after maxNodes nodes.
 */
function bestSet(m: Model, cands: number[], rest: Float64Array, maxNodes: number): { set: number[]; nodes: number } {
  const { D } = m;
  const cap = rest.slice();
  // Slack weighs each resource by the host's room in it (a share of what is free).
  const weightOf = new Float64Array(D);
  for (let d = 0; d < D; d++) weightOf[d] = cap[d] > EPS ? 1 / cap[d] : 0;
  const slack = () => {
    let s = 0;
    for (let d = 0; d < D; d++) s += rest[d] * weightOf[d];
    return s;
  };
  let best: number[] = [];
  let bestSlack = Infinity;
  let nodes = 0;
  const chosen: number[] = [];
  // The last unit of an exact fill is looked up by its demand, not searched for.
  const keyOf = (get: (d: number) => number) => {
    let k = 0;
    for (let d = 0; d < D; d++) k = (Math.imul(k, 1000003) + Math.round(get(d) * 1024)) | 0;
    return k;
  };
  const byDemand = new Map<number, number[]>();
  cands.forEach((u, i) => {
    const k = keyOf((d) => m.dem[u * D + d]);
    const list = byDemand.get(k);
    if (list) list.push(i);
    else byDemand.set(k, [i]);
  });
  const exactly = (u: number) => {
    for (let d = 0; d < D; d++) if (Math.abs(m.dem[u * D + d] - rest[d]) > EPS) return false;
    return true;
  };
  // Members in the set per anti-affinity group: a second one is never taken.
  const inSet = new Map<number, number>();
  const clash = (u: number) => {
    for (const g of m.groups[u]) if ((inSet.get(g) ?? 0) > 0) return true;
    return false;
  };
  const take = (u: number, sign: 1 | -1) => {
    for (let d = 0; d < D; d++) rest[d] -= sign * m.dem[u * D + d];
    for (const g of m.groups[u]) inSet.set(g, (inSet.get(g) ?? 0) + sign);
  };
  const dfs = (from: number): boolean => {
    nodes++;
    const s = slack();
    if (s < bestSlack - EPS) {
      bestSlack = s;
      best = [...chosen];
      if (s <= EPS) return true;
    }
    if (nodes >= maxNodes) return true;
    const exact = byDemand.get(keyOf((d) => rest[d]))?.find((i) => i >= from && exactly(cands[i]) && !clash(cands[i]));
    if (exact !== undefined) {
      best = [...chosen, cands[exact]];
      bestSlack = 0;
      return true;
    }
    for (let i = from; i < cands.length; i++) {
      const u = cands[i];
      // Every candidate weighed counts, not only the nodes entered.
      if (++nodes >= maxNodes) return true;
      if (!fitsIn(m, u, rest) || clash(u)) continue;
      chosen.push(u);
      take(u, 1);
      const stop = dfs(i + 1);
      take(u, -1);
      chosen.pop();
      if (stop) return true;
    }
    return false;
  };
  // The largest candidate is in the set; the search fills around it.
  chosen.push(cands[0]);
  take(cands[0], 1);
  dfs(1);
  take(cands[0], -1);
  for (let d = 0; d < D; d++) rest[d] = cap[d];
  inSet.clear();
  return { set: best, nodes };
}
