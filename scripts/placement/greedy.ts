/** The first pass: each unit in turn to the host its policy prefers; returns the units left over. */
import type { Model } from './model.ts';

export type Policy = 'pack' | 'spread';

/** A set of hosts as a mask (to test) and a list (to walk). */
export interface HostSet {
  mask: Uint8Array;
  list: Int32Array;
}

export function hostSet(mask: Uint8Array): HostSet {
  return { mask, list: Int32Array.from(Array.from(mask.keys()).filter((h) => mask[h] === 1)) };
}

/** Hosts worth looking at for u: the shorter of its eligible hosts and the allowed ones (test both). */
export function hostsFor(m: Model, u: number, allowed?: HostSet): Int32Array {
  return allowed && allowed.list.length < m.eligibleList[u].length ? allowed.list : m.eligibleList[u];
}

/** u may go to h: eligible and allowed. */
export function may(m: Model, u: number, h: number, allowed?: HostSet): boolean {
  return m.eligible[u][h] === 1 && (!allowed || allowed.mask[h] === 1);
}

export function greedy(m: Model, order: number[], policy: Policy): number[] {
  const left: number[] = [];
  for (const u of order) {
    const h = policy === 'pack' ? packHost(m, u) : spreadHost(m, u);
    if (h < 0) left.push(u);
    else m.insert(u, h);
  }
  return left;
}

/**
 * pack: the host already receiving VMs that u fills best; else the host (busy or empty) with the
 * most room left after u, so that the next VMs follow it there (pack keeps the receiving hosts few).
 */
export function packHost(m: Model, u: number, allowed?: HostSet): number {
  let best = -1;
  let bestSlack = Infinity;
  let open = -1;
  let openRoom = -Infinity;
  for (const h of hostsFor(m, u, allowed)) {
    if (!may(m, u, h, allowed) || !m.apart(u, h) || !m.room(u, h)) continue;
    if (m.receiving(h)) {
      const s = m.slackAfter(u, h);
      if (s < bestSlack) [best, bestSlack] = [h, s];
    } else {
      const r = m.roomAfter(u, h);
      if (r > openRoom) [open, openRoom] = [h, r];
    }
  }
  return best >= 0 ? best : open;
}

/** spread: the host whose highest utilization after taking u is lowest. */
export function spreadHost(m: Model, u: number, allowed?: HostSet): number {
  let best = -1;
  let bestPeak = Infinity;
  for (const h of hostsFor(m, u, allowed)) {
    if (!may(m, u, h, allowed) || !m.apart(u, h) || !m.room(u, h)) continue;
    const p = m.peak(h, u);
    if (p < bestPeak - 1e-12) [best, bestPeak] = [h, p];
  }
  return best;
}
