/** Choosing one destination for one VM, by policy, through the ledger: the runner's re-placement when a destination fails. */
import type { Host, Resources, Vm } from '../fleet/types.ts';
import { sumDemand, type Ledger } from './ledger.ts';

/** Normalized size of a demand vector: sum over resources of demand / scale. */
type Sizer = (d: Resources) => number;

function sizerFor(ledger: Ledger, hosts: Host[]): Sizer {
  const scale: Resources = {};
  for (const k of ledger.dims) scale[k] = hosts.reduce((s, h) => s + (ledger.limitOf(h.name)[k] ?? 0), 0) / Math.max(1, hosts.length);
  return (d) => ledger.dims.reduce((s, k) => s + (scale[k] > 0 ? (d[k] ?? 0) / scale[k] : 0), 0);
}

/** The host for a unit among candidates, or undefined when none has room (the runner's one-VM re-placement). */
export function chooseHost(ledger: Ledger, unit: Vm[], candidates: Host[], policy: 'pack' | 'spread'): Host | undefined {
  const demand = sumDemand(unit);
  const fits = candidates.filter((h) => ledger.refuse(unit, h, demand) === undefined);
  return policy === 'spread' ? pickSpread(fits, ledger, demand) : pickRoomiest(fits, ledger, demand, sizerFor(ledger, candidates));
}

/** pack, one VM at a time: the host with the most room left after the move. */
function pickRoomiest(fits: Host[], ledger: Ledger, demand: Resources, size: Sizer): Host | undefined {
  let best: Host | undefined;
  let bestKey = -Infinity;
  for (const h of fits) {
    const free = ledger.free(h.name);
    const s = size(Object.fromEntries(ledger.dims.map((k) => [k, free[k] - (demand[k] ?? 0)])));
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
