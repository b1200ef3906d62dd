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
 *
 * For fleets that are (nearly) full, exactFills runs before the first pass: patterns for few
 * kinds of VM (byPattern), else a sieve of exact sets looked up by summed demand and, up to
 * COVER_UP_TO units, an exact cover of the units by every exact set of up to six.
 */
import { seeded, shuffle, type Random } from '../random.ts';
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
    shuffle(rng, tail);
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

/** Units few enough for exactFills to list every exact set of up to six and cover the units with them. */
const COVER_UP_TO = 260;
/** Exact sets the cover may list before it gives way to the sieve. */
const MAX_ROWS = 100_000;

/** Units drawn for one set before its pair is looked up, at most (sets of up to DRAWN + 2), and draws in a row that fill no host before a kind of host gives up. */
const DRAWN = 8;
const DRAWN_MISSES = 2_000;
const DRAWN_PICK = 8;

/** Work one lookup of an exact set by its summed demand counts for (about what weighing as many units for a host costs). */
const LOOKUP = 4;

/** A resource is tight when what waits needs at least this share of the room the hosts have left. */
const TIGHT = 0.97;

/**
 * Exact fills for fleets that are (nearly) full: a host is filled exactly in every tight resource
 * (to the unit, where demands are whole numbers). In turn, each applied only when it places every
 * waiting unit (but the last): patterns, for few kinds of VM (byPattern); the sieve, exact sets of
 * one to six units found by their summed demand (a unit, a pair, a unit and a pair, two pairs, a
 * unit and two pairs, two triples), smallest first, each placed at once (before the sets of
 * five are listed, sets of up to eight drawn: drawn()), then the exact search
 * for what is left; up to COVER_UP_TO units, an exact cover of the units by every such set; the
 * sieve again, whose sets then stay. Returns the work spent (lookups and sets indexed).
 */
export function exactFills(m: Model, units: number[], effort: number): number {
  // Budgets, each from where its step starts: patterns a quarter of the effort, the first sieve an
  // eighth, the cover three fifths, the last sieve a quarter; this first one bounds the pair index.
  let budget = Math.ceil((effort * 3) / 5);
  const { D } = m;
  const items = units.filter((u) => m.at[u] < 0 && !m.torn[u] && m.eligibleList[u].length > 0).sort((a, b) => m.weight[b] - m.weight[a] || a - b);
  const n = items.length;
  let work = n + m.H;
  if (n < 2 || budget <= 0) return work;
  const roomAt = (h: number, d: number) => Math.max(0, m.lim[h * D + d] - m.load[h * D + d]);
  const need = new Float64Array(D);
  const room = new Float64Array(D);
  for (const u of items) for (let d = 0; d < D; d++) need[d] += m.dem[u * D + d];
  for (let h = 0; h < m.H; h++) for (let d = 0; d < D; d++) room[d] += roomAt(h, d);
  const tight: number[] = [];
  for (let d = 0; d < D; d++) if (room[d] > EPS && need[d] >= TIGHT * room[d]) tight.push(d);
  if (tight.length === 0) return work;
  // Whole-number demands fill a host when they leave less than one unit of room.
  const whole = tight.map((d) => items.every((u) => Number.isInteger(m.dem[u * D + d])));
  const targetOf = (h: number) => Float64Array.from(tight, (d, i) => (whole[i] ? Math.floor(roomAt(h, d) + EPS) : roomAt(h, d)));
  const keyOf = (v: Float64Array) => {
    let key = 0;
    for (let i = 0; i < v.length; i++) key = (Math.imul(key, 1000003) + Math.round(v[i] * 1024)) | 0;
    return key;
  };
  const T = tight.length;
  const dem = new Float64Array(n * T);
  items.forEach((u, j) => tight.forEach((d, i) => (dem[j * T + i] = m.dem[u * D + d])));

  // Hosts by kind (the same target); a kind keeps the hosts not filled yet.
  const kindsNow = () => {
    const kinds = new Map<number, { target: Float64Array; hosts: number[] }>();
    for (let h = 0; h < m.H; h++) {
      const target = targetOf(h);
      if (target.every((x) => x <= EPS)) continue;
      const key = keyOf(target);
      const kind = kinds.get(key);
      if (kind && kind.target.every((x, i) => x === target[i])) kind.hosts.push(h);
      else if (!kind) kinds.set(key, { target, hosts: [h] });
    }
    return kinds;
  };
  let kinds = kindsNow();
  const widest = new Float64Array(T);
  for (const k of kinds.values()) k.target.forEach((x, i) => (widest[i] = Math.max(widest[i], x)));

  // Few kinds of VM (flavours): how many of each kind every host takes, searched over exact patterns
  // (before the pairs are indexed: a fleet of thousands of VMs has too many pairs, not too many kinds).
  if (byPattern(m, items, tight, whole, Math.min(budget - work, Math.ceil(effort / 4)), (w) => (work += w))) return work;
  // Shares that filled some hosts but not all (byShare leaves its best attempt): what is left, on
  // the hosts left, is a small fleet of its own.
  if (items.some((u) => m.at[u] >= 0)) return work + exactFills(m, items.filter((u) => m.at[u] < 0), Math.max(0, effort - work));
  // Singles and pairs by summed demand (chains through next).
  const singles = new Map<number, number[]>();
  for (let j = 0; j < n; j++) {
    const key = keyOf(dem.subarray(j * T, (j + 1) * T));
    const list = singles.get(key);
    if (list) list.push(j);
    else singles.set(key, [j]);
  }
  if ((n * (n - 1)) / 2 > budget / 2) return work;
  const pa: number[] = [];
  const pb: number[] = [];
  const next: number[] = [];
  const head = new Map<number, number>();
  const sum = new Float64Array(T);
  // Pairs are indexed in order of their first unit: from[a] is the first pair whose first unit is a or later.
  const from = new Int32Array(n + 1);
  for (let a = 0; a < n; a++) {
    from[a] = pa.length;
    for (let b = a + 1; b < n; b++) {
      let fits = true;
      for (let i = 0; i < T && fits; i++) fits = (sum[i] = dem[a * T + i] + dem[b * T + i]) <= widest[i] + EPS;
      if (!fits) continue;
      const key = keyOf(sum);
      next.push(head.get(key) ?? -1);
      head.set(key, pa.length);
      pa.push(a);
      pb.push(b);
    }
  }
  from[n] = pa.length;
  work += (n * (n - 1)) / 2;

  const left = new Uint8Array(n).fill(1);
  const equals = (set: number[], target: Float64Array) => {
    for (let i = 0; i < T; i++) {
      let s = 0;
      for (const j of set) s += dem[j * T + i];
      if (Math.abs(s - target[i]) > EPS) return false;
    }
    return true;
  };
  /** Place the set on a host of the kind that takes every unit of it (all rules), if any. */
  const commit = (kind: { hosts: number[] }, set: number[]): number => {
    for (let x = 0; x < kind.hosts.length; x++) {
      const h = kind.hosts[x];
      work += set.length;
      const done: number[] = [];
      for (const j of set) {
        const u = items[j];
        if (m.eligible[u][h] !== 1 || !m.apart(u, h) || !m.room(u, h)) break;
        m.insert(u, h);
        done.push(u);
      }
      if (done.length === set.length) {
        for (const j of set) left[j] = 0;
        kind.hosts.splice(x, 1);
        return h;
      }
      for (const u of done) m.remove(u);
    }
    return -1;
  };
  const rest = new Float64Array(T);
  /** What is left of target after the units of set. */
  const restOf = (target: Float64Array, set: number[]) => {
    for (let i = 0; i < T; i++) {
      let s = target[i];
      for (const j of set) s -= dem[j * T + i];
      rest[i] = s;
    }
    return rest.every((x) => x >= -EPS);
  };
  /** Complete set with a pair from the index (units not in set, left), placed on a host of the kind. */
  const withPair = (kind: { target: Float64Array; hosts: number[] }, set: number[]): boolean => {
    // Each lookup counts, found or not (with many kinds of host, most find nothing), as the few units weighed it costs.
    work += LOOKUP;
    if (!restOf(kind.target, set)) return false;
    for (let p = head.get(keyOf(rest)) ?? -1; p >= 0; p = next[p]) {
      if (++work > budget) return false;
      const a = pa[p];
      const b = pb[p];
      if (!left[a] || !left[b] || set.includes(a) || set.includes(b)) continue;
      const whole = [...set, a, b];
      if (equals(whole, kind.target) && commit(kind, whole) >= 0) return true;
    }
    return false;
  };
  const live = () => [...kinds.values()].filter((k) => k.hosts.length > 0);
  /** Triples of the units listed (in their order), by summed demand, those that fit the widest host. */
  const tripleIndex = (list: number[]) => {
    const most = (list.length * (list.length - 1) * (list.length - 2)) / 6;
    const ta = new Int32Array(most);
    const tb = new Int32Array(most);
    const tc = new Int32Array(most);
    const thead = new Heads(most);
    let count = 0;
    for (let x = 0; x < list.length; x++) {
      for (let y = x + 1; y < list.length; y++) {
        for (let z = y + 1; z < list.length; z++) {
          const a = list[x];
          const b = list[y];
          const c = list[z];
          let fits = true;
          for (let i = 0; i < T && fits; i++) fits = (sum[i] = dem[a * T + i] + dem[b * T + i] + dem[c * T + i]) <= widest[i] + EPS;
          if (!fits) continue;
          thead.add(keyOf(sum), count);
          ta[count] = a;
          tb[count] = b;
          tc[count++] = c;
        }
      }
    }
    work += most;
    return { ta, tb, tc, tnext: thead.next, thead, count };
  };
  const saved = m.snapshot();
  const allPlaced = () => items.every((u) => m.at[u] >= 0);
  const again = () => {
    m.restore(saved);
    left.fill(1);
    kinds = kindsNow();
  };
  // Few units: the sieve (an eighth of the effort), else every exact set of up to six and an exact
  // cover of the units by them (below), else the sieve again with a quarter of the effort.
  if (n <= COVER_UP_TO) {
    budget = Math.min(budget, work + Math.ceil(effort / 8));
    sieve();
    if (allPlaced()) return work;
    again();
    budget = Math.min(effort, work + Math.ceil((effort * 3) / 5));
    if (cover()) return work;
    again();
  }
  budget = Math.min(effort, work + Math.ceil(effort / 4));
  sieve();
  return work;

  /** Exact sets of one to six units, smallest first, each placed as found; then the exact search for what is left. */
  function sieve(): void {
    for (let size = 1; size <= 5 && work < budget; size++) {
      // Before the sets of five are scanned in order: sets of any size up to eight, drawn.
      if (size === 5) drawn(Math.min(budget, work + Math.ceil((budget - work) / 2)));
      for (const kind of live()) {
        if (size === 1) {
          for (const j of singles.get(keyOf(kind.target)) ?? []) {
            if (kind.hosts.length === 0) break;
            work++;
            if (left[j] && equals([j], kind.target)) commit(kind, [j]);
          }
        } else if (size === 2) {
          while (kind.hosts.length > 0 && work < budget && withPair(kind, []));
        } else if (size === 3) {
          for (let x = 0; x < n && kind.hosts.length > 0 && work < budget; x++) if (left[x]) withPair(kind, [x]);
        } else if (size === 4) {
          for (let p = 0; p < pa.length && kind.hosts.length > 0 && work < budget; p++) if (left[pa[p]] && left[pb[p]]) withPair(kind, [pa[p], pb[p]]);
        } else {
          for (let x = 0; x < n && kind.hosts.length > 0 && work < budget; x++) {
            if (!left[x]) continue;
            for (let p = from[x + 1]; p < pa.length && kind.hosts.length > 0 && work < budget; p++) {
              work++;
              if (!left[pa[p]] || !left[pb[p]]) continue;
              if (!left[x]) break;
              withPair(kind, [x, pa[p], pb[p]]);
            }
          }
        }
      }
    }
    // Sets of six: a triple of the units left and the triple that completes it, from an index of triples (when it is small).
    const six = items.map((_, j) => j).filter((j) => left[j]);
    const triples = (six.length * (six.length - 1) * (six.length - 2)) / 6;
    if (live().length > 0 && triples <= (budget - work) / 4) {
      const { ta, tb, tc, tnext, thead, count } = tripleIndex(six);
      for (const kind of live()) {
        for (let t = 0; t < count && kind.hosts.length > 0 && work < budget; t++) {
          const set = [ta[t], tb[t], tc[t]];
          if (!set.every((j) => left[j]) || !restOf(kind.target, set)) continue;
          for (let q = thead.get(keyOf(rest)); q >= 0; q = tnext[q]) {
            if (++work > budget) break;
            const other = [ta[q], tb[q], tc[q]];
            if (!other.every((j) => left[j] && !set.includes(j))) continue;
            const whole = [...set, ...other];
            if (equals(whole, kind.target) && commit(kind, whole) >= 0) break;
          }
        }
      }
    }

    // What is left, with the hosts not filled: the exact search at once (the sieve's sets stay put).
    const rest2 = items.filter((u) => m.at[u] < 0);
    const open: number[] = [];
    let pool = rest2.length;
    for (let h = 0; h < m.H; h++) {
      if (!tight.some((d) => roomAt(h, d) >= 1 - EPS) || !rest2.some((u) => m.eligible[u][h] === 1)) continue;
      open.push(h);
      pool += m.members[h].length;
    }
    if (rest2.length > 0 && work < budget && open.length <= MAX_HOSTS && pool <= MAX_POOL) work += repack(m, open, rest2, budget - work).work;
  }

  /**
   * Exact sets drawn, not listed: the largest unit left (or, every other time, one drawn), then
   * units drawn that still fit, each step looking up the one unit or the pair that would fill
   * the host exactly with them (sets of up to DRAWN + 2 units). Where demands follow one another
   * (memory and disk as vCPU, with some noise) many sets fill a host by accident, and a listing
   * of every set of five spends the budget on the first few units; where they do not, a kind gives
   * up after DRAWN_MISSES draws in a row that fill nothing. Drawn by a generator seeded from
   * the fleet, so the same input gives the same placement.
   */
  function drawn(until: number): void {
    const rng = seeded(n * 7919 + m.H);
    const draw = (k: number) => rng.int(0, k - 1);
    const set: number[] = [];
    const here = new Float64Array(T);
    for (const kind of live()) {
      let misses = 0;
      let pool = items.map((_, j) => j).filter((j) => left[j]);
      while (kind.hosts.length > 0 && pool.length > 0 && work < until && misses < DRAWN_MISSES) {
        misses++;
        set.length = 0;
        here.set(kind.target);
        let placed = false;
        for (let step = 0; step < 2 * DRAWN && set.length < DRAWN && !placed && work < until; step++) {
          // Of a few units drawn that fit, the one that leaves the room most like the host's in shape.
          let j = -1;
          let skew = Infinity;
          for (let c = 0; c < (step === 0 && misses % 2 === 1 ? 1 : DRAWN_PICK); c++) {
            work++;
            const k = step === 0 && misses % 2 === 1 ? pool[0] : pool[draw(pool.length)];
            if (set.includes(k)) continue;
            let fits = true;
            let off = 0;
            for (let i = 0; i < T && fits; i++) {
              const r = here[i] - dem[k * T + i];
              fits = r >= -EPS;
              off += Math.abs(r / kind.target[i] - (here[0] - dem[k * T]) / kind.target[0]);
            }
            if (fits && off < skew) [j, skew] = [k, off];
          }
          if (j < 0) continue;
          set.push(j);
          for (let i = 0; i < T; i++) here[i] -= dem[j * T + i];
          if (here.every((x) => Math.abs(x) <= EPS)) placed = commit(kind, [...set]) >= 0;
          else {
            work += LOOKUP;
            for (const k of singles.get(keyOf(here)) ?? []) {
              if (!left[k] || set.includes(k)) continue;
              const whole = [...set, k];
              if (equals(whole, kind.target) && commit(kind, whole) >= 0) {
                placed = true;
                break;
              }
            }
            if (!placed && set.length >= 1) placed = withPair(kind, set);
          }
        }
        if (placed) {
          misses = 0;
          pool = pool.filter((j) => left[j]);
        }
      }
    }
  }

  /**
   * Every set of up to six units that fills a host kind exactly (a row), then an exact cover of
   * the units that are in any row (Knuth's algorithm X: the unit in fewest live rows first, each
   * of its rows in turn, backtracking). The units in no row (larger sets) and the hosts left go to
   * the exact search, at the end of each cover. Applied only when everything is placed.
   */
  function cover(): boolean {
    const kindList = live();
    const all = items.map((_, j) => j);
    const estimate = (n * (n - 1) * (n - 2)) / 6 * (1 + 2 * kindList.length);
    if (estimate > budget - work) return false;
    const trip = tripleIndex(all);
    const rows: number[][] = [];
    const rowKind: number[] = [];
    const need = new Float64Array(T);
    const minus = (t: Float64Array, a: number, b: number, c: number) => {
      for (let i = 0; i < T; i++) {
        need[i] = t[i] - (a >= 0 ? dem[a * T + i] : 0) - (b >= 0 ? dem[b * T + i] : 0) - (c >= 0 ? dem[c * T + i] : 0);
        if (need[i] < -EPS) return false;
      }
      return true;
    };
    const add = (set: number[], k: number) => {
      if (rows.length > MAX_ROWS || !equals(set, kindList[k].target)) return;
      rows.push(set);
      rowKind.push(k);
    };
    // Too many exact sets (VMs alike: every few of them fill a host): the cover gives way to the sieve.
    const full = () => rows.length > MAX_ROWS || work >= budget;
    for (const [k, kind] of kindList.entries()) {
      const t = kind.target;
      for (const j of singles.get(keyOf(t)) ?? []) add([j], k);
      // The pairs completing t less a, b and c whose first unit comes after min (each set once, in order).
      const pairs = (a: number, b: number, c: number, min: number) => {
        work++;
        if (rows.length > MAX_ROWS) return;
        if (!minus(t, a, b, c)) return;
        for (let p = head.get(keyOf(need)) ?? -1; p >= 0; p = next[p]) {
          work++;
          if (pa[p] > min) add([a, b, c, pa[p], pb[p]].filter((j) => j >= 0), k);
        }
      };
      pairs(-1, -1, -1, -1);
      for (let x = 0; x < n && !full(); x++) pairs(x, -1, -1, x);
      for (let p = 0; p < pa.length && !full(); p++) pairs(pa[p], pb[p], -1, pb[p]);
      // Fives (a triple and a pair after it) and sixes (two triples in order), from one pass over the triples.
      for (let q = 0; q < trip.count && !full(); q++) {
        const [a, b, c] = [trip.ta[q], trip.tb[q], trip.tc[q]];
        work++;
        if (!minus(t, a, b, c)) continue;
        const key = keyOf(need);
        for (let p = head.get(key) ?? -1; p >= 0; p = next[p]) {
          work++;
          if (pa[p] > c) add([a, b, c, pa[p], pb[p]], k);
        }
        for (let r = trip.thead.get(key); r >= 0; r = trip.tnext[r]) {
          work++;
          if (trip.ta[r] > c) add([a, b, c, trip.ta[r], trip.tb[r], trip.tc[r]], k);
        }
      }
      if (full()) return false;
    }
    const rowsOf: number[][] = items.map(() => []);
    rows.forEach((r, i) => r.forEach((j) => rowsOf[j].push(i)));
    const rowed = all.filter((j) => rowsOf[j].length > 0);
    const unrowed = all.filter((j) => rowsOf[j].length === 0).map((j) => items[j]);
    const hostsLeft = kindList.map((k) => k.hosts.length);
    const covered = new Uint8Array(n);
    const chosen: number[] = [];
    let open = rowed.length;
    // Live rows per unit, kept as rows die (a unit of theirs covered) and come back (dancing links' counts).
    const count = Int32Array.from(rowsOf, (r) => r.length);
    const dead = new Int32Array(rows.length);
    const take = (r: number) => {
      for (const j of rows[r]) {
        covered[j] = 1;
        for (const r2 of rowsOf[j]) {
          work++;
          if (dead[r2]++ === 0) for (const j2 of rows[r2]) count[j2]--;
        }
      }
      open -= rows[r].length;
      hostsLeft[rowKind[r]]--;
      chosen.push(r);
    };
    const untake = (r: number) => {
      chosen.pop();
      hostsLeft[rowKind[r]]++;
      open += rows[r].length;
      for (let x = rows[r].length - 1; x >= 0; x--) {
        const j = rows[r][x];
        for (const r2 of rowsOf[j]) if (--dead[r2] === 0) for (const j2 of rows[r2]) count[j2]++;
        covered[j] = 0;
      }
    };
    /** Place the chosen rows (and the units in no row, by the exact search on the hosts left); undone unless everything is placed. */
    const apply = (): boolean => {
      const placed: { kind: number; h: number; set: number[] }[] = [];
      const undo = () => {
        for (const x of placed.reverse()) {
          for (const j of x.set) {
            m.remove(items[j]);
            left[j] = 1;
          }
          kindList[x.kind].hosts.push(x.h);
        }
        for (const k of kindList) k.hosts.sort((a, b) => a - b);
      };
      for (const r of chosen) {
        const h = commit(kindList[rowKind[r]], rows[r]);
        if (h < 0) {
          undo();
          return false;
        }
        placed.push({ kind: rowKind[r], h, set: rows[r] });
      }
      if (unrowed.length === 0) return true;
      const hosts = kindList.flatMap((k) => k.hosts);
      if (hosts.length <= MAX_HOSTS) {
        const r = repack(m, hosts, unrowed, Math.min(LOOSE, budget - work));
        work += r.work;
        if (r.found) return true;
      }
      undo();
      return false;
    };
    const solve = (): boolean => {
      if (open === 0) return apply();
      if (work >= budget) return false;
      // The unit in fewest live rows.
      let best = -1;
      for (const j of rowed) {
        if (covered[j] || (best >= 0 && count[j] >= count[best])) continue;
        best = j;
        if (count[j] === 0) return false;
      }
      work += rowed.length;
      for (const r of rowsOf[best]) {
        if (dead[r] > 0 || hostsLeft[rowKind[r]] === 0) continue;
        take(r);
        if (solve()) return true;
        untake(r);
        if (work >= budget) return false;
      }
      return false;
    };
    return solve();
  }
}

/** Kinds of VM (alike in demand and in the hosts they may use) above which byPattern gives way. */
const MAX_TYPES = 48;
/** ... up to this many where there are MANY_EACH units or more a kind on average. */
const MAX_TYPES_ANY = 512;
const MANY_EACH = 4;
/** Exact patterns one kind of host may have before byPattern gives way (to byShare). */
const MAX_PATTERNS = 5_000;
/** Steps byShare's search may take for one host, and its attempts at most. */
const SHARE_NODES = 20_000;
const SHARE_TRIES = 200;
/** Times one attempt of byShare takes back its last hosts (2 at first, twice as many every 16 times) before it gives up. */
const SHARE_BACKS = 64;
/** An attempt of byShare gives up after this part of its budget. */
const SHARE_SLICE = 6;
/** Exact patterns byShare weighs for one host before it takes the nearest. */
const SHARE_FOUND = 20;

/**
 * Fleets of few kinds of VM (flavours), nearly full: a host is filled exactly by a pattern (how
 * many VMs of each kind), and the patterns of every kind of host are listed; then hosts, kind by
 * kind, each take a pattern (within a kind in the order of the list, as its hosts are alike),
 * depth first, until every VM has a host, pruned where a kind of VM has more left than the hosts
 * left could take. Applied only when every VM is placed. Members of anti-affinity groups are
 * taken first, each onto a host with no member of its groups (takeApart).
 * spend(work) counts the work; returns whether everything was placed.
 */
function byPattern(m: Model, items: number[], tight: number[], whole: boolean[], budget: number, spend: (w: number) => void): boolean {
  const { D } = m;
  // Kinds of VM: the same demand and the same hosts (the model shares one mask per class).
  const masks = new Map<Uint8Array, number>();
  const typeKey = new Map<string, number>();
  const typeOf = new Int32Array(items.length);
  const reps: number[] = [];
  for (const [i, u] of items.entries()) {
    if (!masks.has(m.eligible[u])) masks.set(m.eligible[u], masks.size);
    const key = `${masks.get(m.eligible[u])}|${Array.from(m.dem.subarray(u * D, (u + 1) * D)).join(',')}`;
    let t = typeKey.get(key);
    if (t === undefined) {
      t = reps.length;
      typeKey.set(key, t);
      reps.push(u);
      if (reps.length > MAX_TYPES_ANY) return false;
    }
    typeOf[i] = t;
  }
  const K = reps.length;
  // More kinds than MAX_TYPES only where each has several VMs on average (flavours with affinity
  // groups: a group moves as one unit, its demand the members' sum); VMs of sizes drawn at random
  // are each a kind of their own, and the sieve is for them.
  if (K > MAX_TYPES && K * MANY_EACH > items.length) return false;
  const count = new Int32Array(K);
  for (let i = 0; i < items.length; i++) count[typeOf[i]]++;
  let work = items.length;
  // Kinds of host: the same room in every resource and the same kinds of VM allowed.
  const hostKinds = new Map<string, number[]>();
  for (let h = 0; h < m.H; h++) {
    const room = Array.from({ length: D }, (_, d) => m.lim[h * D + d] - m.load[h * D + d]);
    if (tight.every((d) => room[d] < 1 - 1e-9)) continue;
    const key = `${room.join(',')}|${reps.map((u) => m.eligible[u][h]).join('')}`;
    const list = hostKinds.get(key);
    if (list) list.push(h);
    else hostKinds.set(key, [h]);
  }
  const kinds = [...hostKinds.values()];
  // Each kind's exact patterns: counts per kind of VM that fill its room exactly in the tight resources (to the unit where whole).
  const patterns: Int32Array[][] = [];
  // How many exact patterns each kind of host has for the work it took to find them (fewest: the
  // most constrained), and whether they could all be listed.
  const many: number[] = [];
  let unlisted = false;
  for (const hosts of kinds) {
    const from = work;
    // Each kind of host lists its patterns with at most a quarter of the budget shared among the kinds: the rest is for the search.
    const cap = Math.min(budget, work + Math.ceil(budget / (4 * kinds.length)));
    const h = hosts[0];
    const room = Float64Array.from({ length: D }, (_, d) => m.lim[h * D + d] - m.load[h * D + d]);
    const list: Int32Array[] = [];
    const c = new Int32Array(K);
    const walk = (t: number): boolean => {
      if (++work > cap) return false;
      if (t === K) {
        if (tight.every((d, i) => (whole[i] ? room[d] < 1 - 1e-9 : room[d] <= 1e-9))) list.push(c.slice());
        return list.length <= MAX_PATTERNS;
      }
      const u = reps[t];
      let most = m.eligible[u][h] === 1 ? count[t] : 0;
      for (let d = 0; d < D; d++) if (m.dem[u * D + d] > 0) most = Math.min(most, Math.floor((room[d] + 1e-9) / m.dem[u * D + d]));
      for (let k = most; k >= 0; k--) {
        c[t] = k;
        for (let d = 0; d < D; d++) room[d] -= k * m.dem[u * D + d];
        const ok = walk(t + 1);
        for (let d = 0; d < D; d++) room[d] += k * m.dem[u * D + d];
        if (!ok) return false;
      }
      c[t] = 0;
      return true;
    };
    if (!walk(0)) unlisted = true;
    many.push(list.length / Math.max(1, work - from));
    patterns.push(list);
  }
  if (unlisted) {
    spend(work);
    // Too many patterns to list (a catalogue of a dozen flavours): each host in turn takes a share
    // of what is left instead, kind of host after kind of host, those with fewest patterns for the
    // work first (hosts of 2 GiB a vCPU fill only with the flavours of 2 GiB and the few that
    // complete them: they take those before hosts that could use any); attempts take the kinds in
    // turn first, as that guess can be wrong.
    const first = kinds.map((_, k) => k).sort((a, b) => many[a] - many[b] || a - b);
    return byShare(m, items, typeOf, reps, count, first.map((k) => kinds[k]), tight, whole, budget - work, spend);
  }
  // Hosts kind by kind; for each kind of VM, the most the hosts from slot i on could take.
  const slots = kinds.flatMap((hosts, k) => hosts.map((h) => ({ h, k })));
  const most = new Int32Array((slots.length + 1) * K);
  for (let i = slots.length - 1; i >= 0; i--) {
    for (let t = 0; t < K; t++) {
      let top = 0;
      for (const p of patterns[slots[i].k]) top = Math.max(top, p[t]);
      most[i * K + t] = most[(i + 1) * K + t] + top;
    }
  }
  const left = count.slice();
  let open = items.length;
  const chosen = new Int32Array(slots.length).fill(-1);
  const search = (i: number, from: number): boolean => {
    if (open === 0) return true;
    if (i === slots.length || ++work > budget) return false;
    for (let t = 0; t < K; t++) if (left[t] > most[i * K + t]) return false;
    const list = patterns[slots[i].k];
    const sameKind = i + 1 < slots.length && slots[i + 1].k === slots[i].k;
    for (let p = from; p < list.length; p++) {
      const c = list[p];
      let fits = true;
      for (let t = 0; t < K && fits; t++) fits = c[t] <= left[t];
      work += K;
      if (!fits) continue;
      let n = 0;
      for (let t = 0; t < K; t++) {
        left[t] -= c[t];
        n += c[t];
      }
      open -= n;
      chosen[i] = p;
      if (search(i + 1, sameKind ? p : 0)) return true;
      chosen[i] = -1;
      open += n;
      for (let t = 0; t < K; t++) left[t] += c[t];
      if (work > budget) return false;
    }
    // This host left empty: the next hosts of its kind stay empty too (they are alike).
    let next = i + 1;
    while (next < slots.length && slots[next].k === slots[i].k) next++;
    return search(next, 0);
  };
  const found = search(0, 0);
  spend(work);
  if (!found) return false;
  // Place: each host takes its pattern's counts, VMs of each kind in turn.
  const queue: number[][] = Array.from({ length: K }, () => []);
  items.forEach((u, i) => queue[typeOf[i]].push(u));
  for (const q of queue) byGroupsLast(m, q);
  const placed: number[] = [];
  for (const [i, p] of chosen.entries()) {
    if (p < 0) continue;
    const { h, k } = slots[i];
    for (let t = 0; t < K; t++) {
      for (let x = 0; x < patterns[k][p][t]; x++) {
        const u = takeApart(m, queue[t], h);
        if (u < 0 || !m.room(u, h) || m.eligible[u][h] !== 1) {
          for (const v of placed) m.remove(v);
          return false;
        }
        m.insert(u, h);
        placed.push(u);
      }
    }
  }
  return true;
}

/**
 * Few kinds of VM with too many patterns to list: host after host, a pattern that fills it exactly
 * and takes of each kind of VM about its share of what is left (the host's share of the room
 * left, rounded up or down at random in proportion), searched depth first, largest kinds first,
 * counts nearest that share first (at most SHARE_NODES steps a host). A fleet filled exactly by
 * some placement keeps, host after host, a mix like the whole one, and the last host takes exactly
 * what is left; where the last few do not split what is left, the whole is drawn again (at most
 * SHARE_TRIES times, each cheap: a few steps a host). Seeded from the fleet. Hosts of several
 * kinds take shares of their kind's part (splitByKind) and of the whole in turn. Where no attempt
 * places every VM, the one that placed most stays (exactFills places the rest); returns whether
 * every VM was placed.
 */
function byShare(m: Model, items: number[], typeOf: Int32Array, reps: number[], count: Int32Array, groups: number[][], tight: number[], whole: boolean[], budget: number, spend: (w: number) => void): boolean {
  const all = groups.flat();
  const { D } = m;
  const K = reps.length;
  const T = tight.length;
  const size = (u: number) => tight.reduce((a, d) => a + m.dem[u * D + d], 0);
  const order = [...reps.keys()].sort((a, b) => size(reps[b]) - size(reps[a]) || a - b);
  const roomOf = (h: number) => Float64Array.from({ length: D }, (_, d) => Math.max(0, m.lim[h * D + d] - m.load[h * D + d]));
  const rng = seeded(items.length * 7919 + all.length);
  const chance = () => rng.int(0, 2 ** 30 - 1) / 2 ** 30;
  const slack = (j: number) => (whole[j] ? 1 - 1e-9 : 1e-9);
  const typeOfUnit = new Map(items.map((u, i) => [u, typeOf[i]]));
  const c = new Int32Array(K);
  const avail = new Float64Array((K + 1) * T);
  const lo = new Float64Array((K + 1) * T);
  const hi = new Float64Array((K + 1) * T);
  let work = 0;
  // The attempt that placed most (VMs and their hosts): left in place where none places every VM.
  let bestUnits: number[] = [];
  let bestHosts: number[] = [];
  // Hosts of several kinds: each kind's part of each kind of VM (what its room needs, nearest the
  // plain shares), so that hosts take their share of their kind's part, not of the whole.
  const G = groups.length;
  const kindOf = new Map<number, number>();
  groups.forEach((list, g) => list.forEach((h) => kindOf.set(h, g)));
  const split = G > 1 ? splitByKind(m, reps, count, groups, tight, whole) : undefined;
  if (split) work += split.work;
  // The most VMs an attempt placed without the parts and with them.
  const placedBy = [0, 0];
  for (let attempt = 0; attempt < SHARE_TRIES && work < budget; attempt++) {
    // The kinds of host from the one this attempt starts with. With several kinds, the first
    // attempts take their shares of the kinds' parts (split) and of the whole in turn, each kind
    // first in turn; then the way that placed more (the parts set the shapes apart; the whole is
    // what works where the parts mislead).
    const early = split !== undefined && attempt < 2 * G;
    const withParts = split !== undefined && (early ? attempt % 2 === 1 : placedBy[1] >= placedBy[0]);
    const start = (early ? Math.floor(attempt / 2) : attempt) % G;
    const cap = work + Math.ceil(budget / SHARE_SLICE);
    const hosts = [...groups.slice(start), ...groups.slice(0, start)].flat();
    const left = count.slice();
    // The room left in all, and of each kind of host.
    const roomLeft = new Float64Array(D);
    const roomOfKind = new Float64Array(G * D);
    for (const h of hosts) {
      const g = kindOf.get(h)!;
      roomOf(h).forEach((x, d) => {
        roomLeft[d] += x;
        roomOfKind[g * D + d] += x;
      });
    }
    const partLeft = withParts ? split.part.slice() : undefined;
    const queue: number[][] = Array.from({ length: K }, () => []);
    items.forEach((u, i) => queue[typeOf[i]].push(u));
    for (const q of queue) byGroupsLast(m, q);
    const placed: number[] = [];
    // The hosts filled, in order: where one cannot be filled, the last few are taken back and
    // drawn again (more of them each time), before the whole attempt is.
    const stack: { at: number; g: number; units: number[]; counts: Int32Array; room: Float64Array }[] = [];
    let backs = 0;
    let stuck = false;
    for (let at = 0; at < hosts.length; ) {
      const h = hosts[at];
      if (left.every((x) => x === 0)) break;
      if (work > cap) {
        stuck = true;
        break;
      }
      const room = roomOf(h);
      const g = kindOf.get(h)!;
      const whole = partLeft ? roomOfKind.subarray(g * D, (g + 1) * D) : roomLeft;
      const share = tight.reduce((a, d) => a + (whole[d] > 0 ? room[d] / whole[d] : 0), 0) / T;
      // From each depth on: what the kinds left could fill at most, and the least and most they take
      // of each tight resource per unit of the first (a room they cannot fill exactly is pruned).
      avail.fill(0, K * T);
      lo.fill(Infinity, K * T);
      hi.fill(-Infinity, K * T);
      for (let i = K - 1; i >= 0; i--) {
        const u = reps[order[i]];
        const n = m.eligible[u][h] === 1 ? left[order[i]] : 0;
        const first = m.dem[u * D + tight[0]];
        for (let j = 0; j < T; j++) {
          const dm = m.dem[u * D + tight[j]];
          avail[i * T + j] = avail[(i + 1) * T + j] + n * dm;
          const r = first > 0 ? dm / first : Infinity;
          lo[i * T + j] = n > 0 ? Math.min(lo[(i + 1) * T + j], r) : lo[(i + 1) * T + j];
          hi[i * T + j] = n > 0 ? Math.max(hi[(i + 1) * T + j], r) : hi[(i + 1) * T + j];
        }
      }
      let nodes = 0;
      // Of the exact patterns found (at most SHARE_FOUND), the one nearest the shares, each kind's
      // miss weighed by how few of it are left (a scarce kind overused strands the last hosts).
      let found = 0;
      let bestCost = Infinity;
      const best = new Int32Array(K);
      const want = new Float64Array(K);
      // What this host's kind has left of each kind of VM (its part, or everything left).
      const mine = new Float64Array(K);
      for (let t = 0; t < K; t++) mine[t] = partLeft ? Math.min(left[t], Math.max(0, partLeft[t * G + g])) : left[t];
      for (let t = 0; t < K; t++) want[t] = mine[t] * share;
      const walk = (i: number): boolean => {
        if (++nodes > SHARE_NODES) return found > 0;
        work++;
        if (i === K) {
          if (!tight.every((d, j) => room[d] < slack(j))) return false;
          let cost = 0;
          for (let t = 0; t < K; t++) cost += (c[t] - want[t]) ** 2 / (mine[t] + 1);
          if (cost < bestCost) {
            bestCost = cost;
            best.set(c);
          }
          return ++found >= SHARE_FOUND;
        }
        const first = room[tight[0]];
        for (let j = 0; j < T; j++) {
          const r = room[tight[j]];
          if (r > avail[i * T + j] + slack(j)) return false;
          // (Filled: under one unit left where whole, so the first resource takes more than its room less one.)
          if (j > 0 && Number.isFinite(hi[i * T + j]) && (r > hi[i * T + j] * first + slack(j) + 1e-9 || r <= lo[i * T + j] * (first - slack(0)) - 1e-9)) return false;
        }
        const t = order[i];
        const u = reps[t];
        let most = m.eligible[u][h] === 1 ? left[t] : 0;
        for (let d = 0; d < D; d++) if (m.dem[u * D + d] > 0) most = Math.min(most, Math.floor((room[d] + 1e-9) / m.dem[u * D + d]));
        const exact = want[t];
        const near = Math.min(most, Math.floor(exact) + (chance() < exact - Math.floor(exact) ? 1 : 0));
        // Counts nearest the share first: near, near + 1, near - 1, ...
        for (let step = 0; step <= 2 * Math.max(near, most - near); step++) {
          const k = step % 2 === 0 ? near + step / 2 : near - (step + 1) / 2;
          if (k < 0 || k > most) continue;
          c[t] = k;
          for (let d = 0; d < D; d++) room[d] -= k * m.dem[u * D + d];
          const ok = walk(i + 1);
          for (let d = 0; d < D; d++) room[d] += k * m.dem[u * D + d];
          if (ok) return true;
          if (nodes > SHARE_NODES) return found > 0;
        }
        c[t] = 0;
        return false;
      };
      walk(0);
      c.set(best);
      if (found === 0) {
        if (stack.length === 0 || ++backs > SHARE_BACKS) {
          stuck = true;
          break;
        }
        const back = Math.min(stack.length, 2 << Math.floor(backs / 16));
        for (let b = 0; b < back; b++) {
          const f = stack.pop()!;
          at = f.at;
          for (const v of f.units) {
            m.remove(v);
            queue[typeOfUnit.get(v)!].push(v);
          }
          for (let t = 0; t < K; t++) left[t] += f.counts[t];
          for (let d = 0; d < D; d++) roomLeft[d] += f.room[d];
          for (let d = 0; d < D; d++) roomOfKind[f.g * D + d] += f.room[d];
          if (partLeft) for (let t = 0; t < K; t++) partLeft[t * G + f.g] += f.counts[t];
          work += f.units.length;
        }
        continue;
      }
      const units: number[] = [];
      for (let t = 0; t < K; t++) {
        for (let x = 0; x < c[t]; x++) {
          const v = takeApart(m, queue[t], h);
          if (v < 0 || !m.room(v, h) || m.eligible[v][h] !== 1) {
            stuck = true;
            break;
          }
          m.insert(v, h);
          placed.push(v);
          units.push(v);
        }
        if (stuck) break;
        left[t] -= c[t];
      }
      if (stuck) break;
      stack.push({ at, g, units, counts: c.slice(), room });
      // (walk leaves room as it found it: the host's room before this pattern.)
      for (let d = 0; d < D; d++) roomLeft[d] = Math.max(0, roomLeft[d] - room[d]);
      for (let d = 0; d < D; d++) roomOfKind[g * D + d] = Math.max(0, roomOfKind[g * D + d] - room[d]);
      if (partLeft) for (let t = 0; t < K; t++) partLeft[t * G + g] -= c[t];
      at++;
    }
    if (!stuck && left.every((x) => x === 0)) {
      spend(work);
      return true;
    }
    // (A VM taken back and placed again is in placed twice.)
    const now = [...new Set(placed)].filter((v) => m.at[v] >= 0);
    placedBy[withParts ? 1 : 0] = Math.max(placedBy[withParts ? 1 : 0], now.length);
    if (now.length > bestUnits.length) {
      bestUnits = now;
      bestHosts = now.map((v) => m.at[v]);
    }
    for (const v of now) m.remove(v);
    work += placed.length;
  }
  // No attempt placed every VM: the one that placed most stays (its hosts filled exactly), and
  // what is left is placed after, on the hosts left (on catalogue fleets the sieve, from the
  // start, did worse: 74% of an attack's fleets of seventeen flavours against 97.7%).
  for (const [i, v] of bestUnits.entries()) m.insert(v, bestHosts[i]);
  work += bestUnits.length;
  spend(work);
  return false;
}

/** Steps fillsWith may take before it says yes. */
const WITH_NODES = 2_000;

/**
 * Whether some set of the VMs left (count of each kind) with at least one of kind t fills host h
 * exactly in the tight resources (a host of 92 vCPU / 192 GiB takes no 16 vCPU / 64 GiB VM: the
 * rest would need less than 2 GiB a vCPU). Depth first, largest kinds first; after WITH_NODES
 * steps, yes (not known). spent.work counts the steps.
 */
function fillsWith(m: Model, reps: number[], count: Int32Array, h: number, tight: number[], whole: boolean[], t: number, spent: { work: number }): boolean {
  const { D } = m;
  const room = Float64Array.from({ length: D }, (_, d) => Math.max(0, m.lim[h * D + d] - m.load[h * D + d]));
  for (let d = 0; d < D; d++) room[d] -= m.dem[reps[t] * D + d];
  if (room.some((x) => x < -1e-9)) return false;
  const size = (u: number) => tight.reduce((a, d) => a + m.dem[u * D + d], 0);
  const order = [...reps.keys()].filter((k) => m.eligible[reps[k]][h] === 1).sort((a, b) => size(reps[b]) - size(reps[a]) || a - b);
  let nodes = 0;
  const walk = (i: number): boolean => {
    if (++nodes > WITH_NODES) return true;
    if (tight.every((d, j) => room[d] < (whole[j] ? 1 - 1e-9 : 1e-9))) return true;
    if (i === order.length) return false;
    // The kinds from here on take, per unit of the first tight resource, between lo and hi of
    // each other: a room outside that cannot be filled.
    const first = room[tight[0]];
    for (let j = 1; j < tight.length; j++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let x = i; x < order.length; x++) {
        const a = m.dem[reps[order[x]] * D + tight[0]];
        const r = a > 0 ? m.dem[reps[order[x]] * D + tight[j]] / a : Infinity;
        lo = Math.min(lo, r);
        hi = Math.max(hi, r);
      }
      // (Filled: what is left of each resource under one unit where whole, else none.)
      const e0 = whole[0] ? 1 : 1e-9;
      const ej = whole[j] ? 1 : 1e-9;
      if (Number.isFinite(hi) && (room[tight[j]] >= hi * first + ej + 1e-9 || room[tight[j]] <= lo * (first - e0) - 1e-9)) return false;
    }
    const k = order[i];
    const u = reps[k];
    let most = count[k] - (k === t ? 1 : 0);
    for (let d = 0; d < D; d++) if (m.dem[u * D + d] > 0) most = Math.min(most, Math.floor((room[d] + 1e-9) / m.dem[u * D + d]));
    for (let c = most; c >= 0; c--) {
      for (let d = 0; d < D; d++) room[d] -= c * m.dem[u * D + d];
      const ok = walk(i + 1);
      for (let d = 0; d < D; d++) room[d] += c * m.dem[u * D + d];
      if (ok) return true;
    }
    return false;
  };
  const found = walk(0);
  spent.work += nodes;
  return found;
}

/** Rounds of splitByKind's scaling at most, and Newton steps a kind of host a round. */
const SPLIT_ROUNDS = 200;
const NEWTON_STEPS = 4;

/** x with a·x = b for a small n×n a (row-major), by elimination with partial pivoting; a direction whose pivot vanishes (a resource that moves with another) gets 0. */
function solveSmall(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const A = Float64Array.from(a);
  const B = Float64Array.from(b);
  const x = new Float64Array(n);
  const pivotOf = new Int32Array(n).fill(-1);
  const scale = Math.max(1e-300, ...Array.from(A, Math.abs));
  const used = new Uint8Array(n);
  for (let col = 0; col < n; col++) {
    let best = -1;
    for (let r = 0; r < n; r++) if (!used[r] && (best < 0 || Math.abs(A[r * n + col]) > Math.abs(A[best * n + col]))) best = r;
    if (best < 0 || Math.abs(A[best * n + col]) < 1e-9 * scale) continue;
    used[best] = 1;
    pivotOf[col] = best;
    for (let r = 0; r < n; r++) {
      if (r === best) continue;
      const q = A[r * n + col] / A[best * n + col];
      if (q === 0) continue;
      for (let c = col; c < n; c++) A[r * n + c] -= q * A[best * n + c];
      B[r] -= q * B[best];
    }
  }
  for (let col = 0; col < n; col++) if (pivotOf[col] >= 0) x[col] = B[pivotOf[col]] / A[pivotOf[col] * n + col];
  return x;
}

/**
 * Each kind of host's part of each kind of VM (part[t * G + g], fractional): every kind of VM
 * split among the kinds of host, and each kind of host's part filling its room in every tight
 * resource, nearest (in relative entropy) a split in proportion to the room. In rounds, each kind
 * of VM is scaled to its count, then each kind of host's parts by exp(its exponents · the VM's
 * demands), the exponents found by Newton steps so that the parts fill its room (a kind of VM a
 * kind of host may not run, or that no exact fill of it holds, stays out). A fleet filled exactly
 * by some placement has such a split; where none is found the parts are still the nearest this
 * gets. Work: fillsWith's steps, and rounds by parts.
 */
function splitByKind(m: Model, reps: number[], count: Int32Array, groups: number[][], tight: number[], whole: boolean[]): { part: Float64Array; work: number } {
  const { D } = m;
  const K = reps.length;
  const G = groups.length;
  const T = tight.length;
  const room = new Float64Array(G * T);
  groups.forEach((list, g) => {
    for (const h of list) tight.forEach((d, j) => (room[g * T + j] += Math.max(0, m.lim[h * D + d] - m.load[h * D + d])));
  });
  const total = new Float64Array(T);
  for (let g = 0; g < G; g++) for (let j = 0; j < T; j++) total[j] += room[g * T + j];
  // Demands as features: each resource's demand over the largest there.
  const most = new Float64Array(T);
  for (const u of reps) tight.forEach((d, j) => (most[j] = Math.max(most[j], m.dem[u * D + d])));
  const f = new Float64Array(K * T);
  for (let t = 0; t < K; t++) for (let j = 0; j < T; j++) f[t * T + j] = most[j] > 0 ? m.dem[reps[t] * D + tight[j]] / most[j] : 0;
  const part = new Float64Array(K * G);
  const spent = { work: 0 };
  for (let t = 0; t < K; t++) {
    for (let g = 0; g < G; g++) {
      let share = 0;
      for (let j = 0; j < T; j++) share += total[j] > 0 ? room[g * T + j] / total[j] : 0;
      part[t * G + g] = m.eligible[reps[t]][groups[g][0]] === 1 && fillsWith(m, reps, count, groups[g][0], tight, whole, t, spent) ? (count[t] * share) / T : 0;
    }
  }
  const fill = new Float64Array(T);
  const jac = new Float64Array(T * T);
  let rounds = 0;
  for (; rounds < SPLIT_ROUNDS; rounds++) {
    // Each kind of VM to its count.
    for (let t = 0; t < K; t++) {
      let sum = 0;
      for (let g = 0; g < G; g++) sum += part[t * G + g];
      if (sum > 0) for (let g = 0; g < G; g++) part[t * G + g] *= count[t] / sum;
    }
    // Each kind of host's parts to its room: Newton steps on the exponents of its parts'
    // demands (a few a round; where resources move together, as disk with vCPU, one of them is
    // dropped from the step).
    let off = 0;
    for (let g = 0; g < G; g++) {
      for (let step = 0; step < NEWTON_STEPS; step++) {
        fill.fill(0);
        jac.fill(0);
        for (let t = 0; t < K; t++) {
          const x = part[t * G + g];
          if (x === 0) continue;
          for (let j = 0; j < T; j++) {
            const dj = m.dem[reps[t] * D + tight[j]] / Math.max(1, room[g * T + j]);
            fill[j] += x * dj;
            for (let k = 0; k < T; k++) jac[j * T + k] += x * dj * f[t * T + k];
          }
        }
        let worst = 0;
        for (let j = 0; j < T; j++) worst = Math.max(worst, Math.abs(fill[j] - (room[g * T + j] > 0 ? 1 : 0)));
        off = Math.max(off, worst);
        if (worst < 1e-9) break;
        const delta = solveSmall(jac, Float64Array.from({ length: T }, (_, j) => (room[g * T + j] > 0 ? 1 : 0) - fill[j]), T);
        for (let t = 0; t < K; t++) {
          let e = 0;
          for (let j = 0; j < T; j++) e += delta[j] * f[t * T + j];
          part[t * G + g] *= Math.exp(Math.max(-20, Math.min(20, e)));
        }
      }
    }
    if (off < 1e-6) break;
  }
  return { part, work: spent.work + (rounds + 1) * K * G * T };
}

/**
 * A queue of VMs of one kind (taken from its end), members of anti-affinity groups last, those in
 * most groups last of all: they are taken first, while most hosts can still take them.
 */
function byGroupsLast(m: Model, queue: number[]): void {
  queue.sort((a, b) => m.groups[a].length - m.groups[b].length || a - b);
}

/** Takes from the queue's end the first VM no member of whose groups is on h (a kind's VMs are alike otherwise); -1 if none. */
function takeApart(m: Model, queue: number[], h: number): number {
  for (let i = queue.length - 1; i >= 0; i--) {
    const u = queue[i];
    if (m.groups[u].length > 0 && !m.apart(u, h)) continue;
    queue.splice(i, 1);
    return u;
  }
  return -1;
}

/** Chains of ids by an integer key (open addressing): the first id of a key, and each id's next. */
class Heads {
  private readonly keys: Int32Array;
  private readonly first: Int32Array;
  private readonly used: Uint8Array;
  readonly next: Int32Array;
  private readonly mask: number;

  constructor(ids: number) {
    let size = 16;
    while (size < ids * 2) size *= 2;
    this.keys = new Int32Array(size);
    this.first = new Int32Array(size);
    this.used = new Uint8Array(size);
    this.next = new Int32Array(Math.max(1, ids));
    this.mask = size - 1;
  }

  private slot(key: number): number {
    // Keys of whole demands end in zero bits: mix them all in (murmur3's finaliser).
    let x = key ^ (key >>> 16);
    x = Math.imul(x, 0x85ebca6b);
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35);
    let i = (x ^ (x >>> 16)) & this.mask;
    while (this.used[i] && this.keys[i] !== key) i = (i + 1) & this.mask;
    return i;
  }

  add(key: number, id: number): void {
    const i = this.slot(key);
    this.next[id] = this.used[i] ? this.first[i] : -1;
    this.keys[i] = key;
    this.first[i] = id;
    this.used[i] = 1;
  }

  /** The first id of key, or -1. */
  get(key: number): number {
    const i = this.slot(key);
    return this.used[i] ? this.first[i] : -1;
  }
}
