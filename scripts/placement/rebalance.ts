/**
 * Rebalance planning: the moves that bring the hosts in scope to a target with the fewest bytes
 * moved (memory, plus disk where storage is local), honouring every rule the Ledger knows
 * (capacity after reserve and overcommit, anti-affinity, affinity, CPU line, hypervisor version).
 * Pure and deterministic.
 *
 * A ceiling per resource (or a spread above the mean, which is a ceiling at mean + spread): each
 * host over it gives up the set of VMs that covers its excess at the least bytes (a covering
 * knapsack, solved by dynamic programming on the resource most in excess, topped up greedily for
 * the others, then pruned), and each goes to the host it fits best under the ceiling. A VM that
 * fits nowhere stays, and its host picks another set. Free K hosts: the hosts whose VMs cost the
 * fewest bytes are emptied first, if everything on them fits elsewhere. Within a budget (moves
 * or bytes), the hosts furthest over go first; what is still over is reported as the shortfall.
 */
import { demandOf, type Host, type Resources, type Vm } from '../fleet/types.ts';
import { Ledger, type LedgerSettings } from './ledger.ts';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const EPS = 1e-9;
/** Steps the covering knapsack's capacity is cut into when demands share no usable unit: finer is closer to optimal, and slower. */
const KNAPSACK_STEPS = 800;
/** Most steps for the exact knapsack (demands in their common unit). */
const EXACT_STEPS = 20_000;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

export interface RebalanceTarget {
  /** Ceiling per resource, as a fraction of capacity x overcommit. */
  ceiling?: Resources;
  /** At most this far above the scope's mean utilization, per resource. */
  spread?: Resources;
  /** Empty this many hosts. */
  freeHosts?: number;
}

export interface RebalanceBudget {
  migrations?: number;
  bytes?: number;
}

export interface RebalanceInput {
  hosts: Host[];
  /** Every VM on those hosts. */
  vms: Vm[];
  /** VMs that must not move. */
  pinned: Set<string>;
  settings: Omit<LedgerSettings, 'maxUtilization'>;
  target: RebalanceTarget;
  budget: RebalanceBudget;
  /** pack (default): each VM to the host it fills best under the ceiling; spread: to the one with the most room. */
  policy?: 'pack' | 'spread';
}

export interface RebalanceMove {
  vm: string;
  source: string;
  destination: string;
  bytes: number;
}

export interface HostUtilization {
  host: string;
  /** Fractions of capacity x overcommit, per resource. */
  before: Resources;
  after: Resources;
}

export interface RebalancePlan {
  moves: RebalanceMove[];
  bytes: number;
  reached: boolean;
  /** Why the target is not reached, one line per host or cause. */
  shortfall: string[];
  /** The ceiling applied per resource (a spread target turned into one). */
  ceiling: Resources;
  freed: string[];
  hosts: HostUtilization[];
}

/** Bytes a migration of this VM sends: its memory, plus its disks where they are local. */
export function bytesOf(vm: Vm): number {
  return (vm.resources.memory_mib ?? 0) * MiB + (vm.storage === 'local' ? (vm.resources.disk_gib ?? 0) * GiB : 0);
}

export function utilizationOf(load: Resources, host: Host, overcommit: Resources): Resources {
  const out: Resources = {};
  for (const [k, cap] of Object.entries(host.capacity)) {
    const denom = cap * (overcommit[k] ?? 1);
    out[k] = denom > 0 ? (load[k] ?? 0) / denom : 0;
  }
  return out;
}

class State {
  readonly ledger: Ledger;
  readonly load = new Map<string, Resources>();
  readonly on = new Map<string, Vm[]>();
  readonly moved = new Set<string>();
  readonly moves: RebalanceMove[] = [];
  bytes = 0;

  constructor(readonly input: RebalanceInput) {
    const byName = new Map(input.hosts.map((h) => [h.name, h]));
    this.ledger = new Ledger(input.hosts, byName, input.vms, { ...input.settings, maxUtilization: 1 });
    for (const h of input.hosts) {
      this.load.set(h.name, {});
      this.on.set(h.name, []);
    }
    for (const vm of input.vms) {
      this.ledger.settle(vm);
      this.add(vm.host, vm);
    }
  }

  private add(host: string, vm: Vm, sign = 1): void {
    const l = this.load.get(host)!;
    for (const [k, v] of Object.entries(demandOf(vm))) l[k] = (l[k] ?? 0) + sign * v;
    if (sign > 0) this.on.get(host)!.push(vm);
    else this.on.set(host, this.on.get(host)!.filter((x) => x.name !== vm.name));
  }

  move(vm: Vm, from: string, to: string): void {
    this.ledger.commit(vm, to);
    this.add(from, vm, -1);
    this.add(to, vm);
    const earlier = this.moves.findIndex((m) => m.vm === vm.name);
    if (earlier >= 0) {
      // Moved back and forth within planning: one move from where it started.
      const m = this.moves[earlier];
      this.moves.splice(earlier, 1);
      this.bytes -= m.bytes;
      this.moved.delete(vm.name);
      if (m.source === to) return;
      from = m.source;
    }
    const bytes = bytesOf(vm);
    this.moves.push({ vm: vm.name, source: from, destination: to, bytes });
    this.bytes += bytes;
    this.moved.add(vm.name);
  }

  movable(host: string): Vm[] {
    return this.on.get(host)!.filter((v) => !this.input.pinned.has(v.name) && !this.moved.has(v.name) && !this.ledger.affinityGroup(v.name) && v.state !== 'crashed');
  }

  withinBudget(extraMoves: number, extraBytes: number): boolean {
    const b = this.input.budget;
    return (b.migrations === undefined || this.moves.length + extraMoves <= b.migrations)
      && (b.bytes === undefined || this.bytes + extraBytes <= b.bytes);
  }
}

export function planRebalance(input: RebalanceInput): RebalancePlan {
  const s = new State(input);
  const oc = input.settings.overcommit;
  const denom = (h: Host, k: string) => (h.capacity[k] ?? 0) * (oc[k] ?? 1);
  const ceiling: Resources = { ...input.target.ceiling };
  for (const [k, spread] of Object.entries(input.target.spread ?? {})) {
    let used = 0;
    let room = 0;
    for (const h of input.hosts) {
      used += s.load.get(h.name)![k] ?? 0;
      room += denom(h, k);
    }
    const mean = room > 0 ? used / room : 0;
    ceiling[k] = Math.min(ceiling[k] ?? 1, mean + spread);
  }
  const before = new Map(input.hosts.map((h) => [h.name, utilizationOf(s.load.get(h.name)!, h, oc)]));
  const shortfall: string[] = [];
  const freed: string[] = [];
  const allowed = (h: Host, k: string) => (ceiling[k] === undefined ? Infinity : ceiling[k] * denom(h, k));
  const excessOf = (h: Host): Resources => {
    const out: Resources = {};
    for (const k of Object.keys(ceiling)) {
      const e = (s.load.get(h.name)![k] ?? 0) - allowed(h, k);
      if (e > EPS * Math.max(1, denom(h, k))) out[k] = e;
    }
    return out;
  };
  /** The host that takes vm best under the ceiling (least room left after), not among excluded. */
  const bestHost = (vm: Vm, excluded: Set<string>): Host | undefined => {
    const d = demandOf(vm);
    let best: Host | undefined;
    let bestLeft = Infinity;
    for (const h of input.hosts) {
      if (excluded.has(h.name) || h.name === vm.host) continue;
      const l = s.load.get(h.name)!;
      let left = Infinity;
      let fits = true;
      // Room left after it, under the ceiling (or, with none, under the host's memory).
      for (const k of Object.keys(ceiling).length > 0 ? Object.keys(ceiling) : ['memory_mib']) {
        const room = Math.min(allowed(h, k), denom(h, k)) - (l[k] ?? 0) - (d[k] ?? 0);
        if (room < -EPS) fits = false;
        left = Math.min(left, room / Math.max(EPS, denom(h, k)));
      }
      if (!fits || s.ledger.refuse([vm], h)) continue;
      const score = input.policy === 'spread' ? -left : left;
      if (score < bestLeft) [best, bestLeft] = [h, score];
    }
    return best;
  };

  if (input.target.freeHosts) {
    const wanted = input.target.freeHosts;
    const cost = (h: Host) => s.on.get(h.name)!.reduce((n, v) => n + bytesOf(v), 0);
    const candidates = [...input.hosts].filter((h) => s.on.get(h.name)!.every((v) => !input.pinned.has(v.name)))
      .sort((a, b) => cost(a) - cost(b) || a.name.localeCompare(b.name));
    for (const h of candidates) {
      if (freed.length >= wanted) break;
      const vms = [...s.movable(h.name)].sort((a, b) => (b.resources.memory_mib ?? 0) - (a.resources.memory_mib ?? 0));
      if (vms.length !== s.on.get(h.name)!.length) continue;
      if (!s.withinBudget(vms.length, vms.reduce((n, v) => n + bytesOf(v), 0))) continue;
      const excluded = new Set([h.name, ...freed]);
      const done: [Vm, string][] = [];
      for (const vm of vms) {
        const to = bestHost(vm, excluded);
        if (!to) break;
        s.move(vm, h.name, to.name);
        done.push([vm, to.name]);
      }
      if (done.length === vms.length) freed.push(h.name);
      else for (const [vm, to] of done.reverse()) s.move(vm, to, h.name);
    }
    if (freed.length < wanted) shortfall.push(`freed ${freed.length} of ${wanted} hosts: the VMs of any other host do not all fit elsewhere${input.budget.migrations || input.budget.bytes ? ' within the budget' : ''}`);
  }

  if (Object.keys(ceiling).length > 0) {
    const stuck = new Set<string>();
    const freedSet = new Set(freed);
    let budgetHit = false;
    for (let round = 0; round < input.vms.length + 1 && !budgetHit; round++) {
      const over = input.hosts.map((h) => ({ h, e: excessOf(h) })).filter((x) => Object.keys(x.e).length > 0)
        .sort((a, b) => relative(b.h, b.e) - relative(a.h, a.e) || a.h.name.localeCompare(b.h.name));
      if (over.length === 0) break;
      let progress = false;
      for (const { h, e } of over) {
        const cands = s.movable(h.name).filter((v) => !stuck.has(v.name));
        const pick = coverAtLeast(cands, e);
        if (!pick) continue;
        for (const vm of pick.sort((a, b) => (b.resources.memory_mib ?? 0) - (a.resources.memory_mib ?? 0))) {
          if (Object.keys(excessOf(h)).length === 0) break;
          if (!s.withinBudget(1, bytesOf(vm))) {
            budgetHit = true;
            break;
          }
          const to = bestHost(vm, new Set([h.name, ...freedSet]));
          if (!to) {
            stuck.add(vm.name);
            continue;
          }
          s.move(vm, h.name, to.name);
          progress = true;
        }
        if (budgetHit) break;
      }
      if (!progress && !input.hosts.some((h) => Object.keys(excessOf(h)).length > 0 && s.movable(h.name).some((v) => !stuck.has(v.name)))) break;
    }
    for (const h of input.hosts) {
      const e = excessOf(h);
      for (const [k, v] of Object.entries(e)) {
        const util = (s.load.get(h.name)![k] ?? 0) / denom(h, k);
        shortfall.push(`${h.name}: ${k} at ${pct(util)} against ${pct(ceiling[k])} (${fmt(k, v)} over)${budgetHit ? ', the budget is spent' : ', nothing more fits elsewhere'}`);
      }
    }
  }

  return {
    moves: s.moves,
    bytes: s.bytes,
    reached: shortfall.length === 0,
    shortfall,
    ceiling,
    freed,
    hosts: input.hosts.map((h) => ({ host: h.name, before: before.get(h.name)!, after: utilizationOf(s.load.get(h.name)!, h, oc) })),
  };

  function relative(h: Host, e: Resources): number {
    return Math.max(...Object.entries(e).map(([k, v]) => v / Math.max(EPS, denom(h, k))));
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const fmt = (k: string, v: number) => (k === 'memory_mib' ? `${Math.ceil(v)} MiB` : `${Math.round(v * 100) / 100} ${k}`);

/**
 * The VMs whose demands cover every excess at the least bytes: a covering knapsack on the
 * resource most in excess (dynamic programming over its demand cut into KNAPSACK_STEPS steps,
 * item weights rounded down so a chosen set really covers), then the cheapest per unit for any
 * other resource still short, then every VM that is not needed dropped, dearest first.
 */
export function coverAtLeast(vms: Vm[], excess: Resources): Vm[] | undefined {
  const dims = Object.keys(excess);
  if (dims.length === 0) return [];
  const total = (set: Vm[], k: string) => set.reduce((n, v) => n + (demandOf(v)[k] ?? 0), 0);
  for (const k of dims) if (total(vms, k) + EPS < excess[k]) return undefined;
  const main = dims.reduce((a, b) => (excess[a] / Math.max(EPS, total(vms, a)) >= excess[b] / Math.max(EPS, total(vms, b)) ? a : b));
  const need = excess[main];
  // Whole-number demands (MiB, vCPUs) have a common divisor: in its units the knapsack is exact.
  const raw = vms.map((v) => demandOf(v)[main] ?? 0);
  const unit = raw.every(Number.isInteger) ? raw.reduce(gcd, 0) : 0;
  const exact = unit > 0 && Math.ceil(need / unit) <= EXACT_STEPS;
  const step = exact ? unit : need / KNAPSACK_STEPS;
  const Q = exact ? Math.ceil(need / unit - EPS) : KNAPSACK_STEPS;
  const weights = raw.map((w) => Math.min(Q, Math.floor(w / step + EPS)));
  // dp[w]: least bytes for quantized weight of at least w (capped at Q).
  const dp = new Float64Array(Q + 1).fill(Infinity);
  dp[0] = 0;
  const take: Uint8Array[] = [];
  for (let i = 0; i < vms.length; i++) {
    const w = weights[i];
    const b = bytesOf(vms[i]);
    const row = new Uint8Array(Q + 1);
    if (w > 0) {
      for (let c = Q; c >= 0; c--) {
        const from = Math.max(0, c - w);
        const via = dp[from] + b;
        // Reaching c from any from <= c - w; capped weights mean c = Q collects every overshoot.
        if (via < dp[c]) {
          dp[c] = via;
          row[c] = 1;
        }
      }
    }
    take.push(row);
  }
  let chosen: Vm[] = [];
  if (Number.isFinite(dp[Q])) {
    // Walk back: which items built dp[Q].
    let c = Q;
    for (let i = vms.length - 1; i >= 0 && c > 0; i--) {
      if (take[i][c]) {
        chosen.push(vms[i]);
        c = Math.max(0, c - weights[i]);
      }
    }
  }
  // Rounding can leave the main resource short; then and for every other resource, add the cheapest per unit.
  for (const k of [main, ...dims.filter((d) => d !== main)]) {
    while (total(chosen, k) + EPS < excess[k]) {
      const rest = vms.filter((v) => !chosen.includes(v) && (demandOf(v)[k] ?? 0) > 0);
      if (rest.length === 0) return undefined;
      const short = excess[k] - total(chosen, k);
      rest.sort((a, b) => bytesOf(a) / Math.min(short, demandOf(a)[k]) - bytesOf(b) / Math.min(short, demandOf(b)[k]));
      chosen.push(rest[0]);
    }
  }
  // Drop what is not needed, dearest first.
  for (const v of [...chosen].sort((a, b) => bytesOf(b) - bytesOf(a))) {
    const without = chosen.filter((x) => x !== v);
    if (dims.every((k) => total(without, k) + EPS >= excess[k])) chosen = without;
  }
  return chosen;
}
