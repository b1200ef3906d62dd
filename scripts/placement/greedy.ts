/** The first pass: each unit in turn to the host its policy prefers; returns the units left over. */
import type { Model } from './model.ts';

export type Policy = 'pack' | 'spread';

export function greedy(m: Model, order: number[], policy: Policy): number[] {
  const left: number[] = [];
  for (const u of order) {
    const h = policy === 'pack' ? packHost(m, u) : spreadHost(m, u);
    if (h < 0) left.push(u);
    else m.insert(u, h);
  }
  return left;
}

/** pack: the used host u fills best; else the unused host with the most room. */
export function packHost(m: Model, u: number, allowed?: Uint8Array): number {
  let best = -1;
  let bestSlack = Infinity;
  let open = -1;
  let openSlack = -Infinity;
  for (const h of m.eligibleList[u]) {
    if ((allowed && !allowed[h]) || !m.apart(u, h) || !m.room(u, h)) continue;
    const s = m.slackAfter(u, h);
    if (m.used(h)) {
      if (s < bestSlack) [best, bestSlack] = [h, s];
    } else if (s > openSlack) [open, openSlack] = [h, s];
  }
  return best >= 0 ? best : open;
}

/** spread: the host whose highest utilization after taking u is lowest. */
export function spreadHost(m: Model, u: number, allowed?: Uint8Array): number {
  let best = -1;
  let bestPeak = Infinity;
  for (const h of m.eligibleList[u]) {
    if ((allowed && !allowed[h]) || !m.apart(u, h) || !m.room(u, h)) continue;
    const p = m.peak(h, u);
    if (p < bestPeak - 1e-12) [best, bestPeak] = [h, p];
  }
  return best;
}
