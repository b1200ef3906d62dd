/**
 * The exact component: a repair step on the hardest hosts, for units the heuristics leave
 * waiting. A neighbourhood (a few hosts with room, the movable units on them and some waiting
 * units) is taken out and packed again by an exact search, bin completion (after Korf, 2002):
 * host after host, every set of units that fits it and leaves no more room than the hosts can
 * spare in all (the waste bound), largest units first, in depth-first order with backtracking
 * over the hosts. When identical hosts remain, the largest unit left goes on the first of them
 * (their order does not matter). The search answers exactly whether the neighbourhood can hold
 * all of them; a yes is applied (more VMs placed, nothing else changed), a no or a search out of
 * budget leaves the placement as it was, which stays the incumbent.
 *
 * Counted work, not time: every unit weighed for a host counts, so the same input always gives
 * the same answer.
 */
import type { Random } from '../random.ts';
import type { Model } from './model.ts';

const EPS = 1e-9;
/** Hosts in one neighbourhood. */
const MAX_HOSTS = 64;
/** Units in one neighbourhood (those on its hosts and the waiting ones). */
const MAX_POOL = 400;
/** Neighbourhoods tried in a row without a gain before the search stops. */
const MISSES = 16;
/**
 * Work one neighbourhood may spend when its hosts have room to spare beyond what its units need
 * (not an exact fill: many sets fit each host, and a search rarely pays), and all such ones in all.
 */
const LOOSE = 100_000;
const LOOSE_IN_ALL = 1_000_000;

export interface ExactResult {
  /** Work spent (units weighed for a host). */
  work: number;
  /** Neighbourhoods that were searched to the end (an exact answer), and those that were proven to hold more. */
  proven: number;
  gains: number;
}

/** Place waiting units by exact repacks of neighbourhoods until none waits, MISSES in a row give nothing, or the budget is spent. */
export function exactRepack(m: Model, budget: number, rng: Random): ExactResult {
  let work = 0;
  let misses = 0;
  let proven = 0;
  let gains = 0;
  let loose = 0;
  const seen = new Set<string>();
  for (let attempt = 0; work < budget && misses < MISSES && loose < LOOSE_IN_ALL; attempt++) {
    const waiting: number[] = [];
    for (let u = 0; u < m.U; u++) if (m.at[u] < 0 && !m.torn[u] && m.eligibleList[u].length > 0) waiting.push(u);
    if (waiting.length === 0) break;
    waiting.sort((a, b) => m.weight[b] - m.weight[a] || a - b);
    const hood = neighbourhood(m, waiting, attempt, rng);
    if (!hood) break;
    const key = `${hood.hosts.join(',')}|${hood.extra.join(',')}`;
    if (seen.has(key)) {
      misses++;
      continue;
    }
    seen.add(key);
    // The first neighbourhood (every host with room) may take all that is left; each later one half of it.
    const r = repack(m, hood.hosts, hood.extra, attempt === 0 ? budget - work : Math.ceil((budget - work) / 2), Math.min(LOOSE, LOOSE_IN_ALL - loose));
    work += r.work + hood.work;
    if (!r.exactFill) loose += r.work;
    if (r.done) proven++;
    if (r.found) {
      gains++;
      misses = 0;
      seen.clear();
    } else misses++;
  }
  return { work, proven, gains };
}

/** Free room on h, in mean hosts summed over resources. */
function roomOf(m: Model, h: number): number {
  let s = 0;
  for (let d = 0; d < m.D; d++) if (m.scale[d] > 0) s += Math.max(0, m.lim[h * m.D + d] - m.load[h * m.D + d]) / m.scale[d];
  return s;
}

/**
 * Attempt 0: all waiting units (as many as fit the pool) with the hosts that have the most room.
 * Later attempts: one waiting unit (in turn, largest first) with half the hosts from the roomiest
 * and half drawn by the seed among the other hosts it may use.
 */
function neighbourhood(m: Model, waiting: number[], attempt: number, rng: Random): { hosts: number[]; extra: number[]; work: number } | undefined {
  const extra = attempt === 0 ? waiting.slice(0, MAX_POOL / 4) : [waiting[(attempt - 1) % waiting.length]];
  const mask = new Uint8Array(m.H);
  for (const u of extra) for (const h of m.eligibleList[u]) mask[h] = 1;
  const cands: { h: number; r: number }[] = [];
  for (let h = 0; h < m.H; h++) if (mask[h]) cands.push({ h, r: roomOf(m, h) });
  // First, the hosts with room only: on a fleet that is exactly full, what waits and what they hold must fill them.
  if (attempt === 0) cands.splice(0, cands.length, ...cands.filter((c) => c.r > EPS));
  if (cands.length === 0) return undefined;
  cands.sort((a, b) => b.r - a.r || a.h - b.h);
  const order = cands.map((c) => c.h);
  if (attempt > 0) {
    // Keep the roomiest half; the rest from the others, drawn by the seed.
    const keep = Math.ceil(MAX_HOSTS / 2);
    const tail = order.splice(keep);
    for (let i = tail.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [tail[i], tail[j]] = [tail[j], tail[i]];
    }
    order.push(...tail);
  }
  const hosts: number[] = [];
  let pool = extra.length;
  for (const h of order) {
    if (hosts.length >= MAX_HOSTS) break;
    if (pool + m.members[h].length > MAX_POOL) continue;
    hosts.push(h);
    pool += m.members[h].length;
  }
  hosts.sort((a, b) => a - b);
  return { hosts, extra, work: m.H + cands.length };
}

/**
 * Take the units off `hosts` and search for a placement of them and of `extra` (waiting) on
 * those hosts alone. found: applied. Otherwise everything is put back as it was. done: the
 * search ended within its budget (its answer is exact).
 */
export function repack(m: Model, hosts: number[], extra: number[], budget: number, loose = budget): { found: boolean; done: boolean; work: number; exactFill: boolean } {
  const { D } = m;
  const before = new Map<number, number>();
  for (const h of hosts) for (const u of [...m.members[h]]) before.set(u, h);
  const items = [...before.keys(), ...extra].sort((a, b) => m.weight[b] - m.weight[a] || a - b);
  for (const u of before.keys()) m.remove(u);
  const n = items.length;
  // What the hosts can spare in all, per resource: room minus what the items need.
  const allow = new Float64Array(D);
  for (const h of hosts) for (let d = 0; d < D; d++) allow[d] += m.lim[h * D + d] - m.load[h * D + d];
  for (const u of items) for (let d = 0; d < D; d++) allow[d] -= m.dem[u * D + d];
  let work = n;
  const giveBack = () => {
    for (const u of items) m.remove(u);
    for (const [u, h] of before) m.insert(u, h);
  };
  for (let d = 0; d < D; d++) {
    if (allow[d] < -EPS) {
      giveBack();
      return { found: false, done: true, work, exactFill: false };
    }
  }
  // Room to spare: the looser (and costlier) search gets the smaller budget.
  const exactRoot = allow.every((x) => x <= EPS);
  if (!exactRoot) budget = Math.min(budget, loose);
  // Hosts with least room first (fewest sets to try); identical hosts side by side.
  const order = [...hosts].sort((a, b) => roomOf(m, a) - roomOf(m, b) || a - b);
  const grouped = items.some((u) => m.groups[u].length > 0);
  const same = (a: number, b: number) => {
    for (let d = 0; d < D; d++) if (Math.abs(m.lim[a * D + d] - m.lim[b * D + d]) > EPS || Math.abs(m.load[a * D + d] - m.load[b * D + d]) > EPS) return false;
    for (const u of items) if (m.eligible[u][a] !== m.eligible[u][b]) return false;
    return true;
  };
  // identicalTail[i]: hosts i.. are alike in limits, load now and which items may use them, and no item has an anti-affinity group.
  const identicalTail = order.map((h, i) => !grouped && order.slice(i + 1).every((x) => same(h, x)));
  const left = new Uint8Array(n).fill(1);
  let outOfBudget = false;
  const rest = new Float64Array(D);

  // Exact fills look up the one item or the pair that fills what is left, by demand (built once, when first needed).
  const keyOf = (get: (d: number) => number) => {
    let key = 0;
    for (let d = 0; d < D; d++) key = (Math.imul(key, 1000003) + Math.round(get(d) * 1024)) | 0;
    return key;
  };
  let maps: { single: Map<number, number[]>; pair: Map<number, number[]> } | undefined;
  const lookups = () => {
    if (maps) return maps;
    const widest = new Float64Array(D);
    for (const h of hosts) for (let d = 0; d < D; d++) widest[d] = Math.max(widest[d], m.lim[h * D + d] - m.load[h * D + d]);
    const add = (map: Map<number, number[]>, key: number, v: number) => {
      const list = map.get(key);
      if (list) list.push(v);
      else map.set(key, [v]);
    };
    maps = { single: new Map(), pair: new Map() };
    for (let p = 0; p < n; p++) {
      const a = items[p];
      add(maps.single, keyOf((d) => m.dem[a * D + d]), p);
      for (let q = p + 1; q < n; q++) {
        const b = items[q];
        let fits = true;
        for (let d = 0; d < D && fits; d++) fits = m.dem[a * D + d] + m.dem[b * D + d] <= widest[d] + EPS;
        if (fits) add(maps.pair, keyOf((d) => m.dem[a * D + d] + m.dem[b * D + d]), p * n + q);
      }
    }
    work += (n * (n + 1)) / 2;
    return maps;
  };
  // Hosts already given their set (exact fills may take them out of order).
  const hostDone = new Uint8Array(order.length);
  const candsOn = (h: number) => {
    const cands: number[] = [];
    for (let j = 0; j < n; j++) if (left[j] && m.eligible[items[j]][h] === 1) cands.push(j);
    work += n;
    return cands;
  };
  const host = (i: number): boolean => {
    if (i === order.length) return left.every((x) => x === 0);
    const first = left.indexOf(1);
    if (allow.every((x) => x <= EPS)) {
      // Every host left must be filled exactly: the largest item left goes on one of them; one
      // branch per kind of host it may use (alike hosts are one branch), each filled exactly around it.
      if (first < 0) return true;
      const tried: number[] = [];
      for (let p = 0; p < order.length; p++) {
        const h = order[p];
        if (hostDone[p] || m.eligible[items[first]][h] !== 1) continue;
        if (!grouped && tried.some((x) => same(x, h))) continue;
        tried.push(h);
        hostDone[p] = 1;
        const ok = exactFill(h, candsOn(h), first, () => host(i + 1));
        hostDone[p] = 0;
        if (ok) return true;
        if (outOfBudget) return false;
      }
      return false;
    }
    // Hosts with room to spare are taken in order (those before any exact fill).
    const at = hostDone.indexOf(0);
    const h = order[at];
    // Items this host may take, and suffix sums of what they need (for the waste bound).
    const cands = candsOn(h);
    const k = cands.length;
    const suf = new Float64Array((k + 1) * D);
    for (let c = k - 1; c >= 0; c--) for (let d = 0; d < D; d++) suf[c * D + d] = suf[(c + 1) * D + d] + m.dem[items[cands[c]] * D + d];
    const forced = identicalTail[at] && first >= 0 ? first : -1;
    const spare = allow.slice();
    const inner = (c: number): boolean => {
      if (outOfBudget) return false;
      for (let d = 0; d < D; d++) rest[d] = m.lim[h * D + d] - m.load[h * D + d];
      // Even every item left would leave more room than the hosts can spare: no set from here fits the bound.
      for (let d = 0; d < D; d++) if (rest[d] - suf[c * D + d] > spare[d] + EPS) return false;
      for (let x = c; x < k; x++) {
        const j = cands[x];
        const u = items[j];
        if (++work > budget) {
          outOfBudget = true;
          return false;
        }
        if (!m.apart(u, h) || !m.room(u, h)) {
          if (j === forced) return false;
          continue;
        }
        m.insert(u, h);
        left[j] = 0;
        if (inner(x + 1)) return true;
        left[j] = 1;
        m.remove(u);
        // With identical hosts left, the largest item goes on this one: sets without it are not tried.
        if (j === forced) return false;
      }
      if (forced >= 0 && left[forced]) return false;
      // This set as it is: its room left comes off what the other hosts may waste.
      for (let d = 0; d < D; d++) {
        const r = m.lim[h * D + d] - m.load[h * D + d];
        if (r > spare[d] + EPS) return false;
        allow[d] = spare[d] - r;
      }
      hostDone[at] = 1;
      const ok = host(i + 1);
      hostDone[at] = 0;
      allow.set(spare);
      return ok;
    };
    return inner(0);
  };

  /**
   * A host that must be filled exactly (the hosts can spare no room): sets are completed by
   * looking up the one item or the pair of items that fills what is left, not searched for. Each
   * node tries the single item (at the root only: a child's single is its parent's pair), the
   * pairs, then branches on one more item, so every exact set is met once.
   */
  const exactFill = (h: number, cands: number[], forced: number, next: () => boolean): boolean => {
    const k = cands.length;
    // Item index -> its place among this host's candidates.
    const pos = new Int32Array(n).fill(-1);
    cands.forEach((j, x) => (pos[j] = x));
    const lim = (d: number) => m.lim[h * D + d] - m.load[h * D + d];
    const exactly = (x: number, need: Float64Array) => {
      for (let d = 0; d < D; d++) if (Math.abs(m.dem[items[cands[x]] * D + d] - need[d]) > EPS) return false;
      return true;
    };
    const take = (x: number): boolean => {
      const u = items[cands[x]];
      if (!m.apart(u, h) || !m.room(u, h)) return false;
      m.insert(u, h);
      left[cands[x]] = 0;
      return true;
    };
    const drop = (x: number) => {
      m.remove(items[cands[x]]);
      left[cands[x]] = 1;
    };
    const need = new Float64Array(D);
    const node = (c: number, root: boolean): boolean => {
      if (outOfBudget) return false;
      for (let d = 0; d < D; d++) need[d] = lim(d);
      if (need.every((x) => x <= EPS)) return next();
      const key = keyOf((d) => need[d]);
      if (root) {
        for (const j of lookups().single.get(key) ?? []) {
          const x = pos[j];
          if (x < c || !exactly(x, need)) continue;
          if (++work > budget) return (outOfBudget = true) && false;
          if (!take(x)) continue;
          if (next()) return true;
          drop(x);
          for (let d = 0; d < D; d++) need[d] = lim(d);
        }
      }
      for (const pq of lookups().pair.get(key) ?? []) {
        const x = pos[Math.floor(pq / n)];
        const y = pos[pq % n];
        if (x < c || y < c) continue;
        if (++work > budget) return (outOfBudget = true) && false;
        let sum = true;
        for (let d = 0; d < D && sum; d++) sum = Math.abs(m.dem[items[cands[x]] * D + d] + m.dem[items[cands[y]] * D + d] - need[d]) <= EPS;
        if (!sum || !take(x)) continue;
        if (take(y)) {
          if (next()) return true;
          drop(y);
        }
        drop(x);
        for (let d = 0; d < D; d++) need[d] = lim(d);
      }
      for (let x = c; x < k; x++) {
        if (++work > budget) return (outOfBudget = true) && false;
        if (!take(x)) continue;
        if (node(x + 1, false)) return true;
        drop(x);
        for (let d = 0; d < D; d++) need[d] = lim(d);
      }
      return false;
    };
    // With identical hosts left, the largest item goes on this one.
    if (forced >= 0) {
      const x = cands.indexOf(forced);
      if (x < 0 || !take(x)) return false;
      if (node(x + 1, true)) return true;
      drop(x);
      return false;
    }
    return node(0, true);
  };
  const found = host(0);
  if (!found) giveBack();
  return { found, done: !outOfBudget, work, exactFill: exactRoot };
}

/** Work packFewer may spend on hosts not alike (no symmetry to break). */
const UNLIKE = 300_000;

/** h and x have the same limits and the same load from residents. */
function sameHost(m: Model, h: number, x: number): boolean {
  for (let d = 0; d < m.D; d++) if (Math.abs(m.lim[h * m.D + d] - m.lim[x * m.D + d]) > EPS || Math.abs(m.residentLoad(h, d) - m.residentLoad(x, d)) > EPS) return false;
  return true;
}

/** Units a placement may hold for packFewer to try it whole. */
const FEWER_UP_TO = 128;

/**
 * pack, on small placements (up to FEWER_UP_TO units): one receiving host fewer, proven or
 * refuted by the exact search. All units on the receiving hosts but the lightest are packed again
 * exactly onto those hosts with the lightest one's units; repeated while it succeeds, the bound is
 * above the hosts used, and the budget lasts. Returns the work spent.
 */
export function packFewer(m: Model, budget: number, bound: () => number): number {
  let work = 0;
  for (;;) {
    const receiving: number[] = [];
    let units = 0;
    for (let h = 0; h < m.H; h++) {
      if (!m.receiving(h)) continue;
      receiving.push(h);
      units += m.members[h].length;
    }
    work += m.H;
    if (units > FEWER_UP_TO || receiving.length <= bound() || work >= budget) return work;
    const weightOn = (h: number) => m.members[h].reduce((s, v) => s + m.weight[v], 0);
    receiving.sort((a, b) => weightOn(a) - weightOn(b) || a - b);
    const [light, ...rest] = receiving;
    // Hosts alike (limits and residents): the search breaks their symmetry and answers fast; else a small share.
    const alike = rest.every((h) => sameHost(m, h, rest[0]));
    const moving = [...m.members[light]];
    for (const u of moving) m.remove(u);
    const r = repack(m, rest, moving, alike ? budget - work : Math.min(budget - work, UNLIKE));
    work += r.work;
    if (!r.found) {
      for (const u of moving) m.insert(u, light);
      return work;
    }
  }
}
