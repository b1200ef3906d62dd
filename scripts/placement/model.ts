/**
 * The placement problem compiled to numbers, so that the solvers can try hundreds of thousands
 * of moves: host limits and loads and unit demands in flat typed arrays (host-major), which
 * hosts each unit may use (computed once per class of units through the Ledger's own rules),
 * and anti-affinity counts per group and host. Whatever the solvers decide is written back
 * through the Ledger, which checks every rule again.
 */
import type { Host, Vm } from '../fleet/types.ts';
import { sumDemand, type Ledger } from './ledger.ts';

const EPS = 1e-9;

export class Model {
  /** Resources, destination hosts, units (a VM, or an affinity group's moving members). */
  readonly D: number;
  readonly H: number;
  readonly U: number;
  /** H×D: what each host may hold (after reserve, overcommit and max utilization). */
  readonly lim: Float64Array;
  /** H×D: what each host holds now (residents plus placed units). */
  readonly load: Float64Array;
  /** U×D: what each unit needs. */
  readonly dem: Float64Array;
  /** Size of a unit: mean over resources of demand / mean host limit. */
  readonly weight: Float64Array;
  /** Per resource: the mean host limit. */
  readonly scale: Float64Array;
  /** Per unit: 1 for hosts it may use (shared between units of one class). */
  readonly eligible: Uint8Array[];
  /** Per unit: the hosts it may use, as a list. */
  readonly eligibleList: Int32Array[];
  /** Per unit: its anti-affinity groups (only groups with two or more members in total). */
  readonly groups: Int32Array[];
  /** G×H: members of each anti-affinity group on each host. */
  readonly antiCount: Int32Array;
  /** Per unit: 1 when it holds two members of one anti-affinity group (no host can take it). */
  readonly torn: Uint8Array;
  /** Per unit: its host, or -1. */
  readonly at: Int32Array;
  /** Per host: the units placed there. */
  readonly members: number[][];

  constructor(
    readonly hosts: Host[],
    readonly units: Vm[][],
    ledger: Ledger,
  ) {
    const D = (this.D = ledger.dims.length);
    const H = (this.H = hosts.length);
    const U = (this.U = units.length);
    this.lim = new Float64Array(H * D);
    this.load = new Float64Array(H * D);
    this.dem = new Float64Array(U * D);
    this.weight = new Float64Array(U);
    this.at = new Int32Array(U).fill(-1);
    this.torn = new Uint8Array(U);
    this.members = hosts.map(() => []);
    const hostIndex = new Map(hosts.map((h, i) => [h.name, i]));

    for (let h = 0; h < H; h++) {
      const lim = ledger.limitOf(hosts[h].name);
      const used = ledger.usedOf(hosts[h].name);
      ledger.dims.forEach((k, d) => {
        this.lim[h * D + d] = lim[k] ?? 0;
        this.load[h * D + d] = used[k] ?? 0;
      });
    }
    const scale = new Float64Array(D);
    for (let d = 0; d < D; d++) {
      let s = 0;
      for (let h = 0; h < H; h++) s += this.lim[h * D + d];
      scale[d] = H > 0 ? s / H : 0;
    }
    units.forEach((unit, u) => {
      const demand = sumDemand(unit);
      ledger.dims.forEach((k, d) => (this.dem[u * D + d] = demand[k] ?? 0));
    });
    this.scale = scale;
    this.reweigh();

    // Eligibility per class: the static rules depend only on what staticKey captures.
    const classes = new Map<string, { mask: Uint8Array; list: Int32Array }>();
    const none = { mask: new Uint8Array(H), list: new Int32Array(0) };
    this.eligible = [];
    this.eligibleList = [];
    for (const unit of units) {
      const key = unit.map((vm) => ledger.staticKey(vm)).join('\n');
      let cls = classes.get(key);
      if (!cls) {
        const mask = new Uint8Array(H);
        for (let h = 0; h < H; h++) mask[h] = unit.every((vm) => ledger.refuseStatic(vm, hosts[h]) === undefined) ? 1 : 0;
        cls = { mask, list: Int32Array.from(Array.from(mask.keys()).filter((h) => mask[h] === 1)) };
        classes.set(key, cls);
      }
      // An affinity group whose staying members sit on a host can only join them there.
      const aff = ledger.affinityGroup(unit[0].name);
      const anchor = aff === undefined ? undefined : ledger.affinityAnchor(aff);
      if (anchor !== undefined) {
        const h = hostIndex.get(anchor);
        if (h === undefined || !cls.mask[h]) cls = none;
        else {
          const mask = new Uint8Array(H);
          mask[h] = 1;
          cls = { mask, list: Int32Array.of(h) };
        }
      }
      this.eligible.push(cls.mask);
      this.eligibleList.push(cls.list);
    }

    // Anti-affinity: only groups that can conflict (two or more members in total) are tracked.
    const size = new Map<string, number>();
    const onHost = ledger.namesByHost();
    const everyone = [...units.flat().map((vm) => vm.name), ...hosts.flatMap((h) => onHost.get(h.name) ?? [])];
    for (const vm of everyone) for (const g of ledger.antiGroups(vm)) size.set(g, (size.get(g) ?? 0) + 1);
    const groupIndex = new Map<string, number>();
    for (const [g, n] of size) if (n > 1) groupIndex.set(g, groupIndex.size);
    this.antiCount = new Int32Array(groupIndex.size * H);
    this.groups = units.map((unit) => {
      const gs = new Set<number>();
      for (const vm of unit) for (const g of ledger.antiGroups(vm.name)) if (groupIndex.has(g)) gs.add(groupIndex.get(g)!);
      return Int32Array.from(gs);
    });
    for (let h = 0; h < H; h++) {
      for (const vm of onHost.get(hosts[h].name) ?? []) {
        for (const g of ledger.antiGroups(vm)) {
          const gi = groupIndex.get(g);
          if (gi !== undefined) this.antiCount[gi * H + h]++;
        }
      }
    }
    // A unit holding two members of one anti-affinity group can go nowhere.
    units.forEach((unit, u) => {
      const seen = new Set<string>();
      for (const vm of unit) {
        for (const g of ledger.antiGroups(vm.name)) {
          if (seen.has(g)) {
            this.torn[u] = 1;
            this.eligible[u] = none.mask;
            this.eligibleList[u] = none.list;
          }
          seen.add(g);
        }
      }
    });
  }

  /**
   * Weigh units by how much they take of what is scarce: per resource, the share of a mean host,
   * times that resource's tightness (demand over room, relative to the tightest resource) cubed,
   * so that the resource that decides how many hosts are needed dominates. `focus` replaces the
   * fleet-wide tightness (for example, what a pool needs over the room it must fit in).
   */
  reweigh(focus?: Float64Array): void {
    const { D, U, scale } = this;
    const tight = new Float64Array(D);
    let top = 0;
    for (let d = 0; d < D; d++) {
      if (scale[d] <= 0) continue;
      if (focus) tight[d] = focus[d];
      else for (let u = 0; u < U; u++) tight[d] += this.dem[u * D + d] / scale[d];
      top = Math.max(top, tight[d]);
    }
    let norm = 0;
    for (let d = 0; d < D; d++) {
      tight[d] = top > 0 ? 0.05 + (tight[d] / top) ** 3 : 1;
      norm += tight[d];
    }
    for (let u = 0; u < U; u++) {
      let w = 0;
      for (let d = 0; d < D; d++) if (scale[d] > 0) w += (tight[d] * this.dem[u * D + d]) / scale[d];
      this.weight[u] = norm > 0 ? w / norm : 0;
    }
  }

  /** No anti-affinity group of u has a member on h. */
  apart(u: number, h: number): boolean {
    const gs = this.groups[u];
    for (let i = 0; i < gs.length; i++) if (this.antiCount[gs[i] * this.H + h] > 0) return false;
    return true;
  }

  /** u has room on h (capacity only). */
  room(u: number, h: number): boolean {
    const D = this.D;
    for (let d = 0; d < D; d++) {
      const need = this.dem[u * D + d];
      // A resource u does not use never counts, even where residents already exceed it.
      if (need > 0 && this.load[h * D + d] + need > this.lim[h * D + d] + EPS) return false;
    }
    return true;
  }

  /** u may go to h now: eligible, apart from its groups, with room. */
  fits(u: number, h: number): boolean {
    return this.eligible[u][h] === 1 && this.apart(u, h) && this.room(u, h);
  }

  /** u would fit on an empty h with only the residents there: it is not hopeless. */
  couldEverFit(u: number): boolean {
    for (const h of this.eligibleList[u]) {
      let ok = true;
      for (let d = 0; d < this.D && ok; d++) {
        const need = this.dem[u * this.D + d];
        ok = need === 0 || this.residentLoad(h, d) + need <= this.lim[h * this.D + d] + EPS;
      }
      if (ok) return true;
    }
    return false;
  }

  /** Load on h from residents only. */
  residentLoad(h: number, d: number): number {
    let l = this.load[h * this.D + d];
    for (const v of this.members[h]) l -= this.dem[v * this.D + d];
    return l;
  }

  insert(u: number, h: number): void {
    // Placed twice, a unit would count twice on its hosts: a bug, never a placement.
    if (this.at[u] >= 0) throw new Error(`placement: unit ${u} inserted on host ${h} while on host ${this.at[u]}`);
    const D = this.D;
    for (let d = 0; d < D; d++) this.load[h * D + d] += this.dem[u * D + d];
    const gs = this.groups[u];
    for (let i = 0; i < gs.length; i++) this.antiCount[gs[i] * this.H + h]++;
    this.at[u] = h;
    this.members[h].push(u);
  }

  remove(u: number): void {
    const h = this.at[u];
    if (h < 0) return;
    const D = this.D;
    for (let d = 0; d < D; d++) this.load[h * D + d] -= this.dem[u * D + d];
    const gs = this.groups[u];
    for (let i = 0; i < gs.length; i++) this.antiCount[gs[i] * this.H + h]--;
    this.at[u] = -1;
    const list = this.members[h];
    const i = list.indexOf(u);
    list[i] = list[list.length - 1];
    list.pop();
  }

  /** Highest utilization over resources on h, optionally with u added. */
  peak(h: number, plus = -1): number {
    const D = this.D;
    let p = 0;
    for (let d = 0; d < D; d++) {
      const lim = this.lim[h * D + d];
      const l = this.load[h * D + d] + (plus >= 0 ? this.dem[plus * D + d] : 0);
      if (lim > 0) p = Math.max(p, l / lim);
      else if (l > EPS) return Infinity;
    }
    return p;
  }

  /** Free room left on h after adding u, as a share of the mean host, summed over resources. */
  slackAfter(u: number, h: number): number {
    const D = this.D;
    let s = 0;
    for (let d = 0; d < D; d++) {
      const lim = this.lim[h * D + d];
      if (lim > 0) s += (lim - this.load[h * D + d] - this.dem[u * D + d]) / lim;
    }
    return s;
  }

  /** Free room left on h after adding u, in mean hosts, summed over resources (absolute: a bigger host has more). */
  roomAfter(u: number, h: number): number {
    const D = this.D;
    let s = 0;
    for (let d = 0; d < D; d++) if (this.scale[d] > 0) s += (this.lim[h * D + d] - this.load[h * D + d] - this.dem[u * D + d]) / this.scale[d];
    return s;
  }

  /** Hosts receiving VMs (what pack keeps few): those with placed units, residents or not. */
  receiving(h: number): boolean {
    return this.members[h].length > 0;
  }

  /** Copy of the assignment, to return to later. */
  snapshot(): Int32Array {
    return this.at.slice();
  }

  /** Go back to an assignment taken by snapshot(). */
  restore(saved: Int32Array): void {
    for (let u = 0; u < this.U; u++) if (this.at[u] !== saved[u]) this.remove(u);
    for (let u = 0; u < this.U; u++) if (saved[u] >= 0 && this.at[u] !== saved[u]) this.insert(u, saved[u]);
  }
}
