/** Choosing one destination for one unit, by policy; shared by batch placement and re-placement. */
import type { Host, Resources, Vm } from '../fleet/types.ts';
import { sumDemand, type Ledger } from './ledger.ts';

/** Normalized size of a demand vector: sum over resources of demand / scale. */
export type Sizer = (d: Resources) => number;

export function sizerFor(ledger: Ledger, hosts: Host[]): Sizer {
  const scale: Resources = {};
  for (const k of ledger.dims) scale[k] = hosts.reduce((s, h) => s + (ledger.limitOf(h.name)[k] ?? 0), 0) / Math.max(1, hosts.length);
  return (d) => ledger.dims.reduce((s, k) => s + (scale[k] > 0 ? (d[k] ?? 0) / scale[k] : 0), 0);
}

/** The host for a unit among candidates, or undefined when none has room. `open`: hosts already receiving VMs. */
export function chooseHost(ledger: Ledger, unit: Vm[], candidates: Host[], policy: 'pack' | 'spread', open?: Set<string>, size?: Sizer): Host | undefined {
  const demand = sumDemand(unit);
  const fits = candidates.filter((h) => ledger.refuse(unit, h, demand) === undefined);
  return policy === 'spread' ? pickSpread(fits, ledger, demand) : pickPack(fits, ledger, demand, open ?? new Set(), size ?? sizerFor(ledger, candidates));
}

/** pack: best fit among hosts already receiving VMs; else open the host with the most room. */
function pickPack(fits: Host[], ledger: Ledger, demand: Resources, isOpen: Set<string>, size: Sizer): Host | undefined {
  const slack = (h: Host) => {
    const free = ledger.free(h.name);
    return size(Object.fromEntries(ledger.dims.map((k) => [k, free[k] - (demand[k] ?? 0)])));
  };
  let best: Host | undefined;
  let bestKey = Infinity;
  for (const h of fits) {
    if (!isOpen.has(h.name)) continue;
    const s = slack(h);
    if (s < bestKey) [best, bestKey] = [h, s];
  }
  if (best) return best;
  bestKey = -Infinity;
  for (const h of fits) {
    const s = slack(h);
    if (s > bestKey) [best, bestKey] = [h, s];
  }
  return best;
}

/** spread: the host whose highest utilization after the move is lowest. */
function pickSpread(fits: Host[], ledger: Ledger, demand: Resources): Host | undefined {
  let best: Host | undefined;
  let bestKey = Infinity;
  for (const h of fits) {
    const lim = ledger.limitOf(h.name);
    const used = ledger.usedOf(h.name);
    let peak = 0;
    for (const k of ledger.dims) if (lim[k] > 0) peak = Math.max(peak, (used[k] + (demand[k] ?? 0)) / lim[k]);
    if (peak < bestKey - 1e-12) [best, bestKey] = [h, peak];
  }
  return best;
}
