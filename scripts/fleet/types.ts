/** The fleet as every driver reports it: hosts with capacity, VMs with their demands. */
import { schemaDefault } from '../plan/defaults.ts';

/** Amount per resource. vcpu, memory_mib and disk_gib always exist; drivers may add named ones (gpu, ...). */
export type Resources = Record<string, number>;

export const CORE_RESOURCES = ['vcpu', 'memory_mib', 'disk_gib'] as const;

/**
 * What a VM is doing, and so how it can move: running and paused move live; shutoff moves cold and
 * stays shut off; suspended (saved to memory or disk by its guest or hypervisor), crashed and busy
 * (a hypervisor task in progress, such as a Nova resize) are left where they are, with the reason.
 */
export type VmState = 'running' | 'paused' | 'shutoff' | 'suspended' | 'crashed' | 'busy';

/** Why a VM in this state is not moved, or undefined when it can be. */
export function unmovable(state: VmState): string | undefined {
  switch (state) {
    case 'crashed': return 'the domain is crashed; recover it (or shut it off) first';
    case 'suspended': return 'the domain is suspended; resume it or shut it off first (neither libvirt nor Nova migrates a suspended guest)';
    case 'busy': return 'a hypervisor task is in progress on it; run again when it has finished';
    default: return undefined;
  }
}

export interface Host {
  name: string;
  /** libvirt host UUID; two hosts with the same UUID are the same host. */
  uuid: string;
  cpuModel: string;
  /** Hypervisor (QEMU) and, where the driver knows it, the libvirt daemon's version. */
  hypervisor: { type: string; version: string; libvirt?: string };
  /** Physical capacity, before overcommit. */
  capacity: Resources;
  labels: Record<string, string>;
  /** NIC bandwidth per direction, MiB/s, where the driver knows it. */
  nicMibps?: number;
  /** The run holding this host, if one does. */
  fence?: Fence;
}

/** A NIC whose speed the driver does not report is taken to be the plan schema's default (fleet.sim.nic_mibps, 10 GbE). */
const DEFAULT_NIC_MIBPS = schemaDefault<number>('/definitions/SimFleet/properties/nic_mibps');

/** A host's NIC bandwidth per direction, MiB/s: as its driver reports it, else the default. */
export function nicMibpsOf(host: Host | undefined): number {
  return host?.nicMibps ?? DEFAULT_NIC_MIBPS;
}

/**
 * A mark on a host: a run is draining it (role source; stays until `evacuator clear`), or moving
 * VMs onto it (role destination; lifted when the run ends).
 */
export interface Fence {
  plan: string;
  run: string;
  role: 'source' | 'destination';
  controller: string;
  pid: number;
  /** When that process started, where known (tells a reused pid apart). */
  pidStart?: string;
  since: string;
}

/** The fence as a person reads it. */
export function describeFence(f: Fence): string {
  return `plan '${f.plan}' (run ${f.run}, ${f.role === 'source' ? 'draining it' : 'moving VMs onto it'}, since ${f.since}, from ${f.controller} pid ${f.pid})`;
}

export interface Vm {
  name: string;
  uuid: string;
  host: string;
  state: VmState;
  /** What the VM claims on its host: vcpu, memory_mib, disk_gib (local disks only count on the host) and named ones. */
  resources: Resources;
  storage: 'shared' | 'local';
  /** Guest CPU model: it runs on hosts whose CPU model can provide it. */
  cpuModel: string;
  antiAffinity?: string;
  affinity?: string;
  /** Non-zero memory a migration sends, MiB, where the driver knows it. */
  residentMib?: number;
  /** Memory dirty rate, MiB/s, where the driver knows it. */
  dirtyMibps?: number;
  /** Disk files, where the driver knows them (a resume deletes leftovers by these paths). */
  disks?: string[];
}

export interface Inventory {
  hosts: Host[];
  vms: Vm[];
  /** Hosts that did not answer, with why. */
  unreachable: { host: string; detail: string }[];
  /** What the driver did or found while reading that a person should know (leftovers cleaned, ...). */
  notes?: string[];
}

/** Demand of a VM on a destination: local disks move with it, shared ones do not. */
export function demandOf(vm: Vm): Resources {
  return vm.storage === 'local' ? vm.resources : { ...vm.resources, disk_gib: 0 };
}

/** Sum of demands per host (what each host already commits). */
export function usedByHost(vms: Vm[]): Map<string, Resources> {
  const used = new Map<string, Resources>();
  for (const vm of vms) {
    if (vm.state === 'crashed') continue;
    const acc = used.get(vm.host) ?? {};
    for (const [k, v] of Object.entries(demandOf(vm))) acc[k] = (acc[k] ?? 0) + v;
    used.set(vm.host, acc);
  }
  return used;
}
