/**
 * What every destination can still take: capacity after overcommit, reserve and max utilization,
 * minus what it commits, and which group members it holds. Pure data; placement and the runner's
 * re-placement both go through it, so they can never disagree about room.
 */
import { compareVersions, cpuCompatible } from '../fleet/cpu.ts';
import { demandOf, type Host, type Resources, type Vm } from '../fleet/types.ts';

export interface LedgerSettings {
  overcommit: Resources;
  reserve: Resources;
  maxUtilization: number;
  /** Plan-declared groups, on top of those the VMs carry. */
  groups: { name: string; policy: 'anti-affinity' | 'affinity'; members: string[] }[];
}

/** Why a VM cannot go to a host, machine-readable for grouping. */
export type Refusal =
  | { kind: 'avoid'; detail: string }
  | { kind: 'cpu'; guest: string; host: string }
  | { kind: 'hypervisor'; source: string; host: string }
  | { kind: 'anti-affinity'; group: string; member: string }
  | { kind: 'affinity'; group: string; host: string }
  | { kind: 'capacity'; resource: string; needs: number; free: number };

export class Ledger {
  readonly dims: string[];
  private limit = new Map<string, Resources>();
  private used = new Map<string, Resources>();
  /** anti-affinity group -> host -> member names there */
  private anti = new Map<string, Map<string, string[]>>();
  /** affinity group -> host its members are on */
  private affinityHost = new Map<string, string>();
  /** affinity group -> members in the books */
  private affinityCount = new Map<string, number>();
  private antiOf = new Map<string, string[]>();
  private affOf = new Map<string, string>();
  private where = new Map<string, { host: string; demand: Resources }>();
  /** (vm, host) pairs ruled out from outside (preflight, a destination gone), with why. */
  private avoided = new Map<string, Map<string, string>>();
  /** VMs that may go to one host only (the plan's placement.assign), with why. */
  private onlyTo = new Map<string, { host: string; why: string }>();

  constructor(
    readonly hosts: Host[],
    private readonly sourceHosts: Map<string, Host>,
    allVms: Vm[],
    settings: LedgerSettings,
  ) {
    const dims = new Set<string>(['vcpu', 'memory_mib', 'disk_gib']);
    for (const vm of allVms) for (const k of Object.keys(vm.resources)) dims.add(k);
    this.dims = [...dims];
    for (const h of hosts) {
      const lim: Resources = {};
      for (const k of this.dims) {
        const cap = h.capacity[k] ?? 0;
        lim[k] = Math.max(0, (cap - (settings.reserve[k] ?? 0)) * (settings.overcommit[k] ?? 1) * settings.maxUtilization);
      }
      this.limit.set(h.name, lim);
      this.used.set(h.name, Object.fromEntries(this.dims.map((k) => [k, 0])));
    }
    for (const vm of allVms) {
      if (vm.antiAffinity) this.antiOf.set(vm.name, [vm.antiAffinity]);
      if (vm.affinity) this.affOf.set(vm.name, vm.affinity);
    }
    for (const g of settings.groups) {
      for (const m of g.members) {
        if (g.policy === 'anti-affinity') this.antiOf.set(m, [...(this.antiOf.get(m) ?? []), g.name]);
        else this.affOf.set(m, g.name);
      }
    }
  }

  /** Record a VM that is already on a host (staying, or resident on a destination). */
  settle(vm: Vm): void {
    this.commit(vm, vm.host);
  }

  antiGroups(vm: string): string[] {
    return this.antiOf.get(vm) ?? [];
  }

  affinityGroup(vm: string): string | undefined {
    return this.affOf.get(vm);
  }

  avoid(vm: string, host: string, why: string): void {
    const m = this.avoided.get(vm) ?? new Map<string, string>();
    m.set(host, why);
    this.avoided.set(vm, m);
  }

  /** vm may go to host only (every other host refused with why): one entry, not one per host refused. */
  only(vm: string, host: string, why: string): void {
    this.onlyTo.set(vm, { host, why });
  }

  /** Free room per resource on a host. */
  free(host: string): Resources {
    const lim = this.limit.get(host);
    const used = this.used.get(host);
    if (!lim || !used) return {};
    return Object.fromEntries(this.dims.map((k) => [k, lim[k] - used[k]]));
  }

  limitOf(host: string): Resources {
    return this.limit.get(host) ?? {};
  }

  usedOf(host: string): Resources {
    return this.used.get(host) ?? {};
  }

  /** Why these VMs (moving together) cannot all go to host, or undefined when they can. */
  refuse(vms: Vm[], host: Host, demand: Resources = sumDemand(vms)): Refusal | undefined {
    for (const vm of vms) {
      const why = this.refuseStatic(vm, host);
      if (why) return why;
    }
    for (const vm of vms) {
      for (const g of this.antiGroups(vm.name)) {
        const there = (this.anti.get(g)?.get(host.name) ?? []).filter((m) => m !== vm.name);
        if (there.length > 0) return { kind: 'anti-affinity', group: g, member: there[0] };
      }
      const aff = this.affinityGroup(vm.name);
      const anchor = aff ? this.affinityHost.get(aff) : undefined;
      if (aff && anchor && anchor !== host.name) return { kind: 'affinity', group: aff, host: anchor };
    }
    return this.shortfalls(host, demand)[0];
  }

  /** Every resource a host lacks for a demand (a resource the demand does not use never counts). */
  shortfalls(host: Host, demand: Resources): Refusal[] {
    const lim = this.limit.get(host.name);
    const used = this.used.get(host.name);
    const out: Refusal[] = [];
    if (!lim || !used) return out;
    for (const k of this.dims) {
      const need = demand[k] ?? 0;
      const free = lim[k] - used[k];
      if (need > 0 && need > free + 1e-9) out.push({ kind: 'capacity', resource: k, needs: need, free });
    }
    return out;
  }

  /** What rules a VM out of a host whatever else is placed: avoided pairs, CPU model, hypervisor. */
  refuseStatic(vm: Vm, host: Host): Refusal | undefined {
    const why = this.avoided.get(vm.name)?.get(host.name);
    if (why) return { kind: 'avoid', detail: why };
    const only = this.onlyTo.get(vm.name);
    if (only && only.host !== host.name) return { kind: 'avoid', detail: only.why };
    if (!cpuCompatible(vm.cpuModel, host.cpuModel)) return { kind: 'cpu', guest: vm.cpuModel, host: host.cpuModel };
    const src = this.sourceHosts.get(vm.host);
    if (src && (src.hypervisor.type !== host.hypervisor.type || compareVersions(host.hypervisor.version, src.hypervisor.version) < 0)) {
      return { kind: 'hypervisor', source: `${src.hypervisor.type} ${src.hypervisor.version}`, host: `${host.hypervisor.type} ${host.hypervisor.version}` };
    }
    return undefined;
  }

  /** The key under which refuseStatic gives the same answer for every host: VMs sharing it share eligibility. */
  staticKey(vm: Vm): string {
    const src = this.sourceHosts.get(vm.host);
    const avoided = [...(this.avoided.get(vm.name)?.keys() ?? [])].sort().join(',');
    const only = this.onlyTo.get(vm.name);
    return `${vm.cpuModel}|${src ? `${src.hypervisor.type} ${src.hypervisor.version}` : ''}|${avoided ? `${vm.name}:${avoided}` : ''}|${only ? `${only.host}\n${only.why}` : ''}`;
  }

  /** Host an affinity group's members already occupy, if any. */
  affinityAnchor(group: string): string | undefined {
    return this.affinityHost.get(group);
  }

  /** VMs in the books, per host. */
  namesByHost(): Map<string, string[]> {
    const by = new Map<string, string[]>();
    for (const [vm, w] of this.where) {
      const list = by.get(w.host);
      if (list) list.push(vm);
      else by.set(w.host, [vm]);
    }
    return by;
  }

  /** Put a VM on a host in the books. */
  commit(vm: Vm, host: string, demand: Resources = demandOf(vm)): void {
    this.release(vm.name);
    const used = this.used.get(host);
    if (used) for (const k of this.dims) used[k] += demand[k] ?? 0;
    for (const g of this.antiGroups(vm.name)) {
      const byHost = this.anti.get(g) ?? new Map<string, string[]>();
      byHost.set(host, [...(byHost.get(host) ?? []), vm.name]);
      this.anti.set(g, byHost);
    }
    const aff = this.affinityGroup(vm.name);
    if (aff) {
      if (!this.affinityHost.has(aff)) this.affinityHost.set(aff, host);
      this.affinityCount.set(aff, (this.affinityCount.get(aff) ?? 0) + 1);
    }
    this.where.set(vm.name, { host, demand });
  }

  /** Take a VM out of the books (it moved elsewhere, or its move was cancelled). */
  release(vm: string): void {
    const w = this.where.get(vm);
    if (!w) return;
    const used = this.used.get(w.host);
    if (used) for (const k of this.dims) used[k] -= w.demand[k] ?? 0;
    for (const g of this.antiGroups(vm)) {
      const byHost = this.anti.get(g);
      byHost?.set(w.host, (byHost.get(w.host) ?? []).filter((m) => m !== vm));
    }
    const aff = this.affinityGroup(vm);
    if (aff) {
      const left = (this.affinityCount.get(aff) ?? 1) - 1;
      this.affinityCount.set(aff, left);
      // The last member gone: the group may start again anywhere.
      if (left === 0) this.affinityHost.delete(aff);
    }
    this.where.delete(vm);
  }
}

export function sumDemand(vms: Vm[]): Resources {
  const total: Resources = {};
  for (const vm of vms) for (const [k, v] of Object.entries(demandOf(vm))) total[k] = (total[k] ?? 0) + v;
  return total;
}
