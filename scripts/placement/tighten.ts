/**
 * Second passes over a placement that already places every VM it can. pack: empty one receiving
 * host at a time (its units go back through the ejection search, confined to the other used
 * hosts) until a lower bound is reached or no host can be emptied. spread: move units off the
 * host with the highest utilization while that lowers it.
 */
import type { Random } from '../random.ts';
import type { Model } from './model.ts';
import { hostSet } from './greedy.ts';
import { placedCount, repair } from './repair.ts';

/** Hosts an attempt takes out: their units form the pool, which must end up fitting on SPARE of them. */
const SPARE = 2;
/** Moves between two weighings of the units during an attempt. */
const REWEIGH_EVERY = 10;

/** Work one attempt to save a host may spend (about 200 moves per unit in the pool), so that several hosts get their turn. */
function attemptBudget(pool: number, allowed: number): number {
  return 200 * pool * pool * Math.max(1, allowed);
}

/**
 * pack: save one used host at a time. Take out the SPARE + 1 lightest used hosts; their units
 * wait in a pool while the ejection search trades them against units on the other used hosts,
 * until what waits fits on SPARE of the hosts taken out (after Buljubašić and Vasquez).
 */
export function packTighter(m: Model, budget: number, rng: Random): number {
  const bound = lowerBound(m);
  const failed = new Set<number>();
  let spent = 0;
  while (spent < budget && receivingHosts(m) > bound) {
    const light = lightest(m, SPARE + 1, failed);
    if (light.length === 0) break;
    const target = placedCount(m);
    const saved = m.snapshot();
    const allowed = new Uint8Array(m.H);
    for (let h = 0; h < m.H; h++) allowed[h] = m.receiving(h) ? 1 : 0;
    for (const h of light) allowed[h] = 0;
    const pool = light.flatMap((h) => [...m.members[h]]);
    for (const v of pool) m.remove(v);
    const spare = light.slice(0, Math.min(SPARE, light.length - 1));
    const fitsSpare = () => fitsOn(m, pool, spare);
    let calls = 0;
    const check = () => {
      // What the pool lacks shifts as units trade places: weigh again now and then.
      if (++calls % REWEIGH_EVERY === 0) m.reweigh(shortOf(m, pool, spare));
      return fitsSpare();
    };
    m.reweigh(shortOf(m, pool, spare));
    const hosts = hostSet(allowed);
    // Each check packs the pool onto the spare hosts, and every REWEIGH_EVERY-th weighs all units: it counts as work per move.
    const checkCost = pool.length * (SPARE + 1) + Math.ceil((m.U * m.D) / REWEIGH_EVERY);
    const r = repair(m, pool, hosts, Math.min(budget - spent, attemptBudget(pool.length, hosts.list.length)), check, rng, false, checkCost);
    // Snapshot and restore walk all units: count them as work too (the checks are in r.work).
    spent += r.work + m.U * 3;
    m.reweigh();
    // placeOn leaves what it could place when it fails; the restore below undoes that.
    if (placeOn(m, pool, spare) && placedCount(m) >= target) failed.clear();
    else {
      m.restore(saved);
      failed.add(light[0]);
    }
  }
  return spent;
}

/** Per resource: how far the pool's demand exceeds the room on the spare hosts (as a ratio). */
function shortOf(m: Model, pool: number[], spare: number[]): Float64Array {
  const r = new Float64Array(m.D);
  for (let d = 0; d < m.D; d++) {
    let need = 0;
    let room = 0;
    for (const u of pool) need += m.dem[u * m.D + d];
    for (const h of spare) room += m.lim[h * m.D + d];
    r[d] = room > 0 ? need / room : 0;
  }
  return r;
}

/** The n receiving hosts given the least, not counting hosts that already failed to be saved first. */
function lightest(m: Model, n: number, failed: Set<number>): number[] {
  const cands: { h: number; w: number }[] = [];
  for (let h = 0; h < m.H; h++) {
    if (m.members[h].length === 0) continue;
    cands.push({ h, w: m.members[h].reduce((s, v) => s + m.weight[v], 0) });
  }
  cands.sort((a, b) => a.w - b.w || a.h - b.h);
  const first = cands.findIndex((c) => !failed.has(c.h));
  if (first < 0) return [];
  return [cands[first].h, ...cands.filter((_, i) => i !== first).slice(0, n - 1).map((c) => c.h)];
}

/** The pool fits on these (empty) hosts, packed largest first, best fit: checked and undone. */
function fitsOn(m: Model, pool: number[], hosts: number[]): boolean {
  const ok = placeOn(m, pool, hosts);
  for (const u of pool) m.remove(u);
  return ok;
}

/** Pack the pool onto the hosts, largest first; false (with what did fit left in place) when some unit fits none. */
function placeOn(m: Model, pool: number[], hosts: number[]): boolean {
  const order = [...pool].sort((a, b) => m.weight[b] - m.weight[a]);
  for (const u of order) {
    let best = -1;
    let bestSlack = Infinity;
    for (const h of hosts) {
      if (!m.fits(u, h)) continue;
      const s = m.slackAfter(u, h);
      if (s < bestSlack) [best, bestSlack] = [h, s];
    }
    if (best < 0) return false;
    m.insert(u, best);
  }
  return true;
}

/** Hosts receiving VMs. */
export function receivingHosts(m: Model): number {
  let n = 0;
  for (let h = 0; h < m.H; h++) if (m.receiving(h)) n++;
  return n;
}

/**
 * No placement of the placed units gives VMs to fewer hosts: per resource, the fewest hosts whose
 * room beside their residents (largest first) covers what the placed units need; and per
 * anti-affinity group, its placed moving members (each on a host of its own).
 */
export function lowerBound(m: Model): number {
  const { D, H } = m;
  let bound = 0;
  const members = new Map<number, number>();
  for (let u = 0; u < m.U; u++) {
    if (m.at[u] < 0) continue;
    for (const g of m.groups[u]) members.set(g, (members.get(g) ?? 0) + 1);
  }
  for (const k of members.values()) bound = Math.max(bound, k);
  for (let d = 0; d < D; d++) {
    let need = 0;
    for (let u = 0; u < m.U; u++) if (m.at[u] >= 0) need += m.dem[u * D + d];
    const room: number[] = [];
    for (let h = 0; h < H; h++) room.push(Math.max(0, m.lim[h * D + d] - m.residentLoad(h, d)));
    room.sort((a, b) => b - a);
    let k = 0;
    while (need > 1e-9 && k < room.length) need -= room[k++];
    bound = Math.max(bound, k);
  }
  return bound;
}

/** Lower the highest utilization: move a unit off the peak host while that lowers the peak. */
export function spreadOut(m: Model, budget: number): number {
  let spent = 0;
  while (spent < budget) {
    spent++;
    let top = -1;
    let topPeak = -1;
    for (let h = 0; h < m.H; h++) {
      const p = m.peak(h);
      if (p > topPeak) [top, topPeak] = [h, p];
    }
    if (top < 0) break;
    let best: [number, number] | undefined;
    let bestPeak = topPeak - 1e-9;
    for (const v of [...m.members[top]]) {
      spent += m.eligibleList[v].length;
      m.remove(v);
      const left = m.peak(top);
      for (const h of m.eligibleList[v]) {
        if (h === top || !m.apart(v, h) || !m.room(v, h)) continue;
        const p = Math.max(left, m.peak(h, v));
        if (p < bestPeak) [best, bestPeak] = [[v, h], p];
      }
      m.insert(v, top);
    }
    if (!best) break;
    m.remove(best[0]);
    m.insert(best[0], best[1]);
  }
  return spent;
}
