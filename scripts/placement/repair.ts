/**
 * Ejection search, after Buljubašić and Vasquez's consistent neighbourhood search for vector
 * packing: units waiting in a pool go onto allowed hosts one at a time; where a unit does not
 * fit, the cheapest set of at most three units on a host that makes room (and every member of
 * its anti-affinity groups there) is evicted into the pool. Units just moved are tabu, so the
 * search does not undo its last steps. It stops when `target` VMs are placed or the budget is
 * spent, and leaves the best assignment it saw.
 */
import type { Random } from '../random.ts';
import { hostsFor, may, packHost, type HostSet } from './greedy.ts';
import type { Model } from './model.ts';

const EPS = 1e-9;
/** Triples are tried on hosts holding at most this many candidates (C(14,3) = 364). */
const TRIPLES_UP_TO = 14;
const NONE: number[] = [];
/** Iterations an evicted unit may not return to the host it left. */
const TENURE = 7;
/** Pool units weighed per move (all of them when the pool is small). */
const SAMPLE = 12;
/** Iterations a unit just placed may not be evicted. */
const LOCK = 2;

export interface RepairResult {
  /** VMs placed at the end. */
  placed: number;
  /** Work spent: (unit, host) pairs weighed plus the units and sets weighed for eviction, times the square root of resources / 3 beyond three. */
  work: number;
}

/** VMs placed in the model. */
export function placedCount(m: Model): number {
  let n = 0;
  for (let u = 0; u < m.U; u++) if (m.at[u] >= 0) n += m.units[u].length;
  return n;
}

/**
 * Runs until done() says so (checked before every move), the pool is empty or the budget is
 * spent. With keepBest, ends on the assignment that placed the most VMs; without, leaves the
 * model as the search ended (the caller decides).
 */
export function repair(m: Model, pool: number[], allowed: HostSet, budget: number, done: (placed: number) => boolean, rng: Random, keepBest = true, doneCost = 0): RepairResult {
  const ej = new Ejector(m);
  const bannedHost = new Int32Array(m.U).fill(-1);
  const bannedUntil = new Int32Array(m.U);
  const lockedUntil = new Int32Array(m.U);
  let placed = placedCount(m);
  let best = placed;
  let bestAt = keepBest ? m.snapshot() : m.at;
  let it = 0;
  let work = 0;
  // Each weighing walks the resources: beyond three of them it counts for more (pruning keeps it under linear).
  const perPair = Math.sqrt(Math.max(1, m.D / 3));
  while (work * perPair < budget && pool.length > 0 && !done(placed)) {
    // What the caller's done() costs counts too (doneCost: its work per call).
    work += doneCost;
    it++;
    // The pool units weighed this move: all of them, or a seeded sample of a big pool.
    const tries = Math.min(pool.length, SAMPLE);
    const offset = rng.int(0, pool.length - 1);
    const at = (t: number) => (pool.length <= SAMPLE ? t : (offset + t * 7919) % pool.length);
    let move: { i: number; h: number; evicted: number[] } | undefined;
    // A unit that fits as it is goes first.
    for (let t = 0; t < tries && !move; t++) {
      const u = pool[at(t)];
      work += 1 + hostsFor(m, u, allowed).length;
      const h = packHost(m, u, allowed);
      if (h >= 0) move = { i: at(t), h, evicted: [] };
    }
    // Else the move that lowers the pool's total weight most (or raises it least): a unit onto a
    // host, evicting the cheapest set there; ties broken by the seed.
    let bestDelta = Infinity;
    let ties = 0;
    const direct = move !== undefined;
    for (let t = 0; t < tries && !direct; t++) {
      const u = pool[at(t)];
      const wu = m.weight[u];
      const hosts = hostsFor(m, u, allowed);
      work += hosts.length;
      for (const c of hosts) {
        if (!may(m, u, c, allowed) || (bannedHost[u] === c && bannedUntil[u] > it)) continue;
        const before = ej.checks;
        const cost = ej.cheapest(u, c, lockedUntil, it, bestDelta + wu + EPS);
        work += 1 + m.members[c].length + ej.checks - before;
        if (cost === Infinity) continue;
        const delta = cost - wu;
        if (delta < bestDelta - EPS) {
          bestDelta = delta;
          ties = 1;
          move = { i: at(t), h: c, evicted: ej.taken() };
        } else if (rng.int(1, ++ties) === 1) move = { i: at(t), h: c, evicted: ej.taken() };
      }
    }
    if (!move) continue;
    const { i, h, evicted } = move;
    const u = pool[i];
    pool[i] = pool[pool.length - 1];
    pool.pop();
    for (const v of evicted) {
      m.remove(v);
      placed -= m.units[v].length;
      bannedHost[v] = h;
      bannedUntil[v] = it + TENURE + rng.int(0, 3);
    }
    m.insert(u, h);
    placed += m.units[u].length;
    lockedUntil[u] = it + LOCK;
    // An evicted unit that fits somewhere as it is goes there at once.
    for (const v of evicted) {
      const to = packHost(m, v, allowed);
      if (to >= 0 && to !== h) {
        m.insert(v, to);
        placed += m.units[v].length;
      } else pool.push(v);
    }
    if (keepBest && placed > best) {
      [best, bestAt] = [placed, m.snapshot()];
      work += m.U;
    }
  }
  if (keepBest && placed < best) {
    m.restore(bestAt);
    placed = best;
  }
  return { placed, work: work * perPair };
}

/** Finds the cheapest set of units to evict from a host so that a unit fits there. */
class Ejector {
  private readonly excess: Float64Array;
  private readonly cand: number[] = [];
  private set: number[] = [];
  /** Subsets tested so far (the work the search accounts for). */
  checks = 0;

  constructor(private readonly m: Model) {
    this.excess = new Float64Array(m.D);
  }

  /** The set found by the last successful cheapest() call. */
  taken(): number[] {
    return this.set.slice();
  }

  /** Cost (total weight) of the cheapest eviction that lets u onto h, below cutoff; Infinity if none. */
  cheapest(u: number, h: number, lockedUntil: Int32Array, it: number, cutoff: number): number {
    const { m, excess, cand } = this;
    const D = m.D;
    const list = m.members[h];
    let forced: number[] = NONE;
    let cost = 0;
    for (let d = 0; d < D; d++) excess[d] = m.dem[u * D + d] > 0 ? m.load[h * D + d] + m.dem[u * D + d] - m.lim[h * D + d] : 0;
    if (!m.apart(u, h)) {
      forced = [];
      for (const g of m.groups[u]) {
        let here = 0;
        for (const v of list) {
          if (!m.groups[v].includes(g)) continue;
          here++;
          if (!forced.includes(v)) {
            if (lockedUntil[v] > it) return Infinity;
            forced.push(v);
            cost += m.weight[v];
            for (let d = 0; d < D; d++) excess[d] -= m.dem[v * D + d];
          }
        }
        // A member that stays on h (not ours to move) rules h out.
        if (m.antiCount[g * m.H + h] > here) return Infinity;
      }
    }
    if (cost >= cutoff) return Infinity;
    if (this.covered()) {
      this.set = forced;
      return cost;
    }
    // Candidates by increasing weight (insertion sort: hosts hold few units); give up at once
    // when all of them together could not make room.
    cand.length = 0;
    for (const v of list) {
      if (lockedUntil[v] > it || (forced !== NONE && forced.includes(v))) continue;
      let j = cand.length;
      cand.push(v);
      while (j > 0 && m.weight[cand[j - 1]] > m.weight[v]) {
        cand[j] = cand[j - 1];
        j--;
      }
      cand[j] = v;
    }
    // How many units at least: per resource short, the largest ones' sums against what is missing.
    const n = cand.length;
    let least = 1;
    for (let d = 0; d < D; d++) {
      if (excess[d] <= EPS) continue;
      let t1 = 0;
      let t2 = 0;
      let t3 = 0;
      for (const v of cand) {
        const x = m.dem[v * D + d];
        if (x > t1) [t1, t2, t3] = [x, t1, t2];
        else if (x > t2) [t2, t3] = [x, t2];
        else if (x > t3) t3 = x;
      }
      if (t1 + t2 + t3 < excess[d] - EPS || (n > TRIPLES_UP_TO && t1 + t2 < excess[d] - EPS)) return Infinity;
      least = Math.max(least, t1 + t2 < excess[d] - EPS ? 3 : t1 < excess[d] - EPS ? 2 : 1);
    }
    let best = cutoff - cost;
    let found: number[] | undefined;
    const w = m.weight;
    for (let a = 0; a < n; a++) {
      const wa = w[cand[a]];
      if (wa >= best) break;
      if (least === 1) {
        this.checks++;
        if (this.covers1(cand[a])) {
          [best, found] = [wa, [cand[a]]];
          break;
        }
      }
      for (let b = a + 1; b < n; b++) {
        const wb = wa + w[cand[b]];
        if (wb >= best) break;
        if (least <= 2) {
          this.checks++;
          if (this.covers2(cand[a], cand[b])) {
            [best, found] = [wb, [cand[a], cand[b]]];
            break;
          }
        }
        if (n > TRIPLES_UP_TO) continue;
        for (let c = b + 1; c < n; c++) {
          const wc = wb + w[cand[c]];
          if (wc >= best) break;
          this.checks++;
          if (this.covers3(cand[a], cand[b], cand[c])) {
            [best, found] = [wc, [cand[a], cand[b], cand[c]]];
            break;
          }
        }
      }
    }
    if (!found) return Infinity;
    this.set = [...forced, ...found];
    return cost + best;
  }

  private covered(): boolean {
    const { excess } = this;
    for (let d = 0; d < excess.length; d++) if (excess[d] > EPS) return false;
    return true;
  }

  private covers1(a: number): boolean {
    const { m, excess } = this;
    const D = m.D;
    for (let d = 0; d < D; d++) if (excess[d] > EPS && m.dem[a * D + d] < excess[d] - EPS) return false;
    return true;
  }

  private covers2(a: number, b: number): boolean {
    const { m, excess } = this;
    const D = m.D;
    for (let d = 0; d < D; d++) if (excess[d] > EPS && m.dem[a * D + d] + m.dem[b * D + d] < excess[d] - EPS) return false;
    return true;
  }

  private covers3(a: number, b: number, c: number): boolean {
    const { m, excess } = this;
    const D = m.D;
    for (let d = 0; d < D; d++) if (excess[d] > EPS && m.dem[a * D + d] + m.dem[b * D + d] + m.dem[c * D + d] < excess[d] - EPS) return false;
    return true;
  }
}
