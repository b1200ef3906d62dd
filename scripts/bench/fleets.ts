/**
 * Generated placement inputs for the benchmarks, seeded: a large fleet with anti-affinity groups
 * and three CPU classes, and tight fleets whose destinations are exactly full in a known
 * placement. Plus the baseline they are compared with: plain first-fit decreasing that honours
 * the same rules, one VM at a time.
 */
import { cpuCompatible } from '../fleet/cpu.ts';
import { demandOf, type Host, type Resources, type Vm } from '../fleet/types.ts';
import type { PlacementInput } from '../placement/place.ts';
import { seeded, type Random } from '../random.ts';

const CPUS = ['Skylake-Server', 'Cascadelake-Server', 'Icelake-Server'];
const FLAVORS: Resources[] = [
  { vcpu: 1, memory_mib: 2048, disk_gib: 20 },
  { vcpu: 2, memory_mib: 4096, disk_gib: 40 },
  { vcpu: 4, memory_mib: 8192, disk_gib: 80 },
  { vcpu: 4, memory_mib: 16384, disk_gib: 100 },
  { vcpu: 8, memory_mib: 32768, disk_gib: 160 },
  { vcpu: 16, memory_mib: 65536, disk_gib: 320 },
];

function host(name: string, cpuModel: string, capacity: Resources): Host {
  return { name, uuid: name, cpuModel, hypervisor: { type: 'QEMU', version: '8.2.0' }, capacity, labels: {} };
}

/**
 * `vms` VMs on `sources` source hosts moving onto `destinations` hosts that already run half as
 * many VMs again; a third of each in each CPU class; anti-affinity groups of 3 to 5 VMs
 * among a fifth of the moving ones.
 */
export function largeFleet(vms: number, sources: number, destinations: number, seed = 1): PlacementInput {
  const rng = seeded(seed);
  const cap = { vcpu: 96, memory_mib: 768 * 1024, disk_gib: 7680 };
  const srcHosts = Array.from({ length: sources }, (_, i) => host(`src-${i}`, CPUS[i % 3], { vcpu: 512, memory_mib: 2 ** 23, disk_gib: 10 ** 6 }));
  const dstHosts = Array.from({ length: destinations }, (_, i) => host(`dst-${i}`, CPUS[i % 3], cap));
  const make = (i: number, where: string, cpu: string): Vm => ({
    name: `vm-${i}`, uuid: `vm-${i}`, host: where, state: 'running', resources: { ...FLAVORS[rng.int(0, FLAVORS.length - 1)] },
    storage: rng.int(0, 3) === 0 ? 'local' : 'shared', cpuModel: cpu,
  });
  const moving = Array.from({ length: vms }, (_, i) => make(i, srcHosts[i % sources].name, CPUS[i % sources % 3]));
  // Half the destinations already run VMs (as many as half the moving ones); the rest are empty.
  const busy = Math.ceil(destinations / 2);
  const residents = Array.from({ length: Math.floor(vms / 2) }, (_, i) => make(vms + i, dstHosts[i % busy].name, CPUS[i % busy % 3]));
  // A fifth of the moving VMs in groups of 3 to 5, members spread over the sources.
  for (let i = 0, group = 0; i < vms / 5; group++) {
    const size = rng.int(3, 5);
    for (let k = 0; k < size && i < vms / 5; k++, i++) moving[(i * 7919) % vms].antiAffinity = `aa-${group}`;
  }
  const overcommit = { vcpu: 4, memory_mib: 1, disk_gib: 1 };
  return { vms: moving, destinations: dstHosts, sources: srcHosts, residents, settings: { overcommit, reserve: { memory_mib: 4096 }, maxUtilization: 0.95, groups: [], policy: 'pack', seed } };
}

/**
 * `hosts` identical destinations, each cut into VMs whose sizes add up exactly to its capacity
 * in every resource: a placement of every VM exists, with no room to spare.
 */
export function tightFleet(hosts: number, perHost: [number, number], seed: number): PlacementInput {
  const rng = seeded(seed);
  const cap = { vcpu: 64, memory_mib: 262144, disk_gib: 2000 };
  const dsts = Array.from({ length: hosts }, (_, i) => host(`dst-${i}`, 'Icelake-Server', cap));
  const src = host('src', 'Icelake-Server', { vcpu: 10 ** 6, memory_mib: 2 ** 40, disk_gib: 10 ** 9 });
  const vms: Vm[] = [];
  for (let h = 0; h < hosts; h++) {
    const k = rng.int(perHost[0], perHost[1]);
    const parts = Object.fromEntries(Object.entries(cap).map(([r, total]) => [r, cut(rng, total, k)]));
    for (let j = 0; j < k; j++) {
      const name = `vm-${vms.length}`;
      vms.push({ name, uuid: name, host: 'src', state: 'running', storage: 'local', cpuModel: 'Icelake-Server', resources: Object.fromEntries(Object.keys(cap).map((r) => [r, parts[r][j]])) });
    }
  }
  // Shuffle, so the order says nothing of the hidden placement.
  for (let i = vms.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [vms[i], vms[j]] = [vms[j], vms[i]];
  }
  const ones = { vcpu: 1, memory_mib: 1, disk_gib: 1 };
  return { vms, destinations: dsts, sources: [src], residents: [], settings: { overcommit: ones, reserve: {}, maxUtilization: 1, groups: [], policy: 'pack', seed } };
}

/** total split into k positive integers (k - 1 distinct random cuts). */
function cut(rng: Random, total: number, k: number): number[] {
  const cuts = new Set<number>();
  while (cuts.size < k - 1) cuts.add(rng.int(1, total - 1));
  const points = [0, ...[...cuts].sort((a, b) => a - b), total];
  return points.slice(1).map((p, i) => p - points[i]);
}

/**
 * The baseline: first-fit decreasing under the same rules (capacity after reserve, overcommit
 * and max utilization; CPU model; anti-affinity counting residents), one VM at a time in
 * decreasing memory order. Returns how many VMs it placed.
 */
export function firstFitDecreasingFleet(input: PlacementInput): number {
  const { overcommit, reserve, maxUtilization } = input.settings;
  const dims = ['vcpu', 'memory_mib', 'disk_gib'];
  const free = new Map(input.destinations.map((h) => [h.name, dims.map((k) => ((h.capacity[k] ?? 0) - (reserve[k] ?? 0)) * (overcommit[k] ?? 1) * maxUtilization)]));
  const groupsOn = new Map(input.destinations.map((h) => [h.name, new Set<string>()]));
  for (const vm of input.residents) {
    const f = free.get(vm.host)!;
    dims.forEach((k, i) => (f[i] -= demandOf(vm)[k] ?? 0));
    if (vm.antiAffinity) groupsOn.get(vm.host)!.add(vm.antiAffinity);
  }
  let placed = 0;
  for (const vm of [...input.vms].sort((a, b) => b.resources.memory_mib - a.resources.memory_mib)) {
    const need = dims.map((k) => demandOf(vm)[k] ?? 0);
    const h = input.destinations.find((d) => cpuCompatible(vm.cpuModel, d.cpuModel) && !(vm.antiAffinity && groupsOn.get(d.name)!.has(vm.antiAffinity)) && free.get(d.name)!.every((f, i) => need[i] <= f));
    if (!h) continue;
    free.get(h.name)!.forEach((_, i, f) => (f[i] -= need[i]));
    if (vm.antiAffinity) groupsOn.get(h.name)!.add(vm.antiAffinity);
    placed++;
  }
  return placed;
}
