/**
 * Generated placement inputs for the benchmarks, seeded: a large fleet with anti-affinity groups
 * and three CPU classes, and tight fleets whose destinations are exactly full in a known
 * placement. Plus the baseline they are compared with: plain first-fit decreasing that honours
 * the same rules, one VM at a time.
 */
import { cpuCompatible } from '../fleet/cpu.ts';
import { demandOf, type Host, type Resources, type Vm } from '../fleet/types.ts';
import type { PlacementInput } from '../placement/place.ts';
import { seeded, shuffle, type Random } from '../random.ts';

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
export function tightFleet(hosts: number, perHost: [number, number], seed: number, law: SizeLaw = 'independent', opts: { antiGroups?: number; caps?: Resources[]; flavours?: [number, number][] } = {}): PlacementInput {
  const rng = seeded(seed);
  // two-shapes: every other host is like a 48-thread / 384 GiB machine, the rest like a 96 / 512 GiB one (vCPU overcommitted 4x).
  // catalogue: like 32-thread / 128 GiB and 48 / 192 GiB machines (memory after reserve), not overcommitted.
  const caps = law === 'two-shapes'
    ? [{ vcpu: 192, memory_mib: 393216, disk_gib: 2000 }, { vcpu: 384, memory_mib: 524288, disk_gib: 2000 }]
    : law === 'catalogue'
      ? [{ vcpu: 32, memory_mib: 131072, disk_gib: 640 }, { vcpu: 48, memory_mib: 196608, disk_gib: 960 }]
      : law === 'full-catalogue'
        ? opts.caps ?? [{ vcpu: 64, memory_mib: 262144, disk_gib: 1280 }]
        : [{ vcpu: 64, memory_mib: 262144, disk_gib: 2000 }];
  const dsts = Array.from({ length: hosts }, (_, i) => host(`dst-${i}`, 'Icelake-Server', caps[i % caps.length]));
  const src = host('src', 'Icelake-Server', { vcpu: 10 ** 6, memory_mib: 2 ** 40, disk_gib: 10 ** 9 });
  const vms: Vm[] = [];
  const hiddenOf = new Map<string, number>();
  const catalogue = law === 'catalogue' ? catalogueOf(rng) : law === 'full-catalogue' ? (opts.flavours ?? CATALOGUE).map(([vcpu, gib]) => ({ vcpu, memory_mib: gib * 1024, disk_gib: 20 * vcpu })) : [];
  for (let h = 0; h < hosts; h++) {
    const cap = caps[h % caps.length];
    let k = rng.int(perHost[0], perHost[1]);
    let parts: Record<string, number[]>;
    if (law === 'catalogue' || law === 'full-catalogue') {
      const flavours = fromCatalogue(rng, catalogue, cap, perHost);
      k = flavours.length;
      parts = Object.fromEntries(Object.keys(cap).map((r) => [r, flavours.map((f) => f[r])]));
    } else {
      parts = law === 'independent'
        ? Object.fromEntries(Object.entries(cap).map(([r, total]) => [r, cut(rng, total, k)]))
        : alongVcpu(rng, cap, k, law);
    }
    for (let j = 0; j < k; j++) {
      const name = `vm-${vms.length}`;
      hiddenOf.set(name, h);
      vms.push({ name, uuid: name, host: 'src', state: 'running', storage: 'local', cpuModel: 'Icelake-Server', resources: Object.fromEntries(Object.keys(cap).map((r) => [r, parts[r][j]])) });
    }
    // antiGroups: the hosts in blocks of that many; two anti-affinity groups a block, each with the
    // largest (then a drawn) VM of each host in it (the hidden placement keeps them apart).
    const g = opts.antiGroups ?? 0;
    if (g > 1 && h % g === g - 1) {
      for (let t = 0; t < 2; t++) {
        for (let b = h - g + 1; b <= h; b++) {
          const mine = vms.filter((v) => hiddenOf.get(v.name) === b && !v.antiAffinity);
          if (mine.length === 0) continue;
          const pick = t === 0 ? mine.reduce((a, v) => (v.resources.memory_mib > a.resources.memory_mib ? v : a)) : mine[rng.int(0, mine.length - 1)];
          pick.antiAffinity = `aa-${h}-${t}`;
        }
      }
    }
  }
  // Shuffle, so the order says nothing of the hidden placement.
  shuffle(rng, vms);
  const ones = { vcpu: 1, memory_mib: 1, disk_gib: 1 };
  return { vms, destinations: dsts, sources: [src], residents: [], settings: { overcommit: ones, reserve: {}, maxUtilization: 1, groups: [], policy: 'pack', seed } };
}

/**
 * How a host is cut into VMs: each resource cut on its own (independent); memory and disk
 * following the vCPU share with up to 10% noise, as flavours do (flavours); one big VM
 * (40-60% of the host, its other resources alike) and the rest cut along vCPU (big-small); or,
 * on hosts of two shapes, memory and disk following vCPU exactly, rounded down (two-shapes: each
 * host's VMs have its own memory per vCPU).
 */
export type SizeLaw = 'independent' | 'flavours' | 'big-small' | 'two-shapes' | 'catalogue' | 'full-catalogue';

/**
 * A cloud's flavours (vCPU, and 2, 4 or 8 GiB a vCPU; disk 20 GiB a vCPU): a catalogue fleet
 * offers 1 vCPU / 2 GiB and five more drawn by the seed (one of 8 GiB a vCPU, one of 4), and its
 * hosts are filled with them alone.
 */
export const CATALOGUE: [number, number][] = [1, 2, 4, 8, 16].flatMap((v) => [2, 4, 8].map((r): [number, number] => [v, v * r]));

function catalogueOf(rng: Random): Resources[] {
  const rest = shuffle(rng, CATALOGUE.slice(1));
  // One of 8 GiB a vCPU and one of 4 among them, so that every host (4 GiB a vCPU) can be filled.
  const rich = rest.find(([v, gib]) => gib === 8 * v)!;
  const even = rest.find(([v, gib]) => gib === 4 * v)!;
  const chosen = [CATALOGUE[0], rich, even, ...rest.filter((f) => f !== rich && f !== even).slice(0, 3)];
  return chosen.map(([vcpu, gib]) => ({ vcpu, memory_mib: gib * 1024, disk_gib: 20 * vcpu }));
}

/** Flavours from the fleet's catalogue that fill cap exactly, as many as perHost allows (more when none fit the range), drawn by the seed. */
function fromCatalogue(rng: Random, flavours: Resources[], cap: Resources, perHost: [number, number]): Resources[] {
  const most = Math.max(...flavours.map((f) => f.vcpu));
  const mostMem = Math.max(...flavours.map((f) => f.memory_mib));
  // Five counts drawn in the range, then every count from one up.
  const counts = [...Array.from({ length: 5 }, () => rng.int(perHost[0], perHost[1])), ...Array.from({ length: cap.vcpu }, (_, i) => i + 1)];
  for (const k of counts) {
    let nodes = 0;
    const acc: Resources[] = [];
    const fill = (vcpu: number, mem: number, left: number): boolean => {
      if (++nodes > 100_000) return false;
      if (left === 0) return vcpu === 0 && mem === 0;
      if (vcpu < left || mem < left * 2048 || vcpu > left * most || mem > left * mostMem) return false;
      const order = shuffle(rng, [...flavours]);
      for (const f of order) {
        acc.push(f);
        if (fill(vcpu - f.vcpu, mem - f.memory_mib, left - 1)) return true;
        acc.pop();
      }
      return false;
    };
    if (fill(cap.vcpu, cap.memory_mib, k)) return acc.map((f) => ({ ...f }));
  }
  throw new Error(`no catalogue fill for ${JSON.stringify(cap)}`);
}

/** Parts whose memory and disk follow the vCPU cut (with noise), each resource summing exactly to the host. */
function alongVcpu(rng: Random, cap: Resources, k: number, law: SizeLaw): Record<string, number[]> {
  const big = Math.round((cap.vcpu * rng.int(40, 60)) / 100);
  const vcpu = law === 'big-small' && k > 1 ? [big, ...cut(rng, cap.vcpu - big, k - 1)] : cut(rng, cap.vcpu, k);
  const follow = (whole: number) => {
    const raw = law === 'two-shapes'
      ? vcpu.map((v) => Math.max(1, Math.floor((whole * v) / cap.vcpu)))
      : vcpu.map((v) => Math.max(1, Math.round((whole * v) / cap.vcpu * (1 + (rng.int(-100, 100) / 1000)))));
    // The rounding and the noise go to the largest part, so the parts add up to the whole exactly.
    const top = raw.indexOf(Math.max(...raw));
    raw[top] += whole - raw.reduce((a, b) => a + b, 0);
    return raw;
  };
  return { vcpu, memory_mib: follow(cap.memory_mib), disk_gib: follow(cap.disk_gib) };
}

/** total split into k positive integers (k - 1 distinct random cuts). */
function cut(rng: Random, total: number, k: number): number[] {
  const cuts = new Set<number>();
  while (cuts.size < k - 1) cuts.add(rng.int(1, total - 1));
  const points = [0, ...[...cuts].sort((a, b) => a - b), total];
  return points.slice(1).map((p, i) => p - points[i]);
}

/**
 * Azure's 2017 public VM trace (V1) in flavours: the share of each (vCPU, memory) class among its
 * VMs, rounded (mostly 1-2 vCPU with under 4 GiB, a tail of large ones).
 */
const AZURE_V1: { share: number; r: Resources }[] = [
  { share: 0.24, r: { vcpu: 1, memory_mib: 1792, disk_gib: 30 } },
  { share: 0.12, r: { vcpu: 1, memory_mib: 3584, disk_gib: 30 } },
  { share: 0.18, r: { vcpu: 2, memory_mib: 3584, disk_gib: 50 } },
  { share: 0.14, r: { vcpu: 2, memory_mib: 7168, disk_gib: 50 } },
  { share: 0.10, r: { vcpu: 4, memory_mib: 7168, disk_gib: 100 } },
  { share: 0.09, r: { vcpu: 4, memory_mib: 14336, disk_gib: 100 } },
  { share: 0.05, r: { vcpu: 8, memory_mib: 14336, disk_gib: 200 } },
  { share: 0.05, r: { vcpu: 8, memory_mib: 28672, disk_gib: 200 } },
  { share: 0.02, r: { vcpu: 16, memory_mib: 57344, disk_gib: 400 } },
  { share: 0.01, r: { vcpu: 24, memory_mib: 114688, disk_gib: 800 } },
];

function azureFlavor(rng: Random): Resources {
  let x = rng.int(0, 9999) / 10000;
  for (const f of AZURE_V1) {
    if (x < f.share) return { ...f.r };
    x -= f.share;
  }
  return { ...AZURE_V1[0].r };
}

/**
 * A busy fleet as operators have it: `hosts` hosts, half like 48 threads / 384 GiB and half like
 * Alibaba's 96 / 512 GiB machines, of two CPU generations; each host filled to `fill` (about) of
 * its memory with Azure V1 flavours; `drained` of them (a share) are the sources, their VMs to
 * move; anti-affinity triplets (members on three hosts) among a tenth of all VMs.
 */
export function busyFleet(seed: number, opts: { hosts?: number; fill?: number; drained?: number } = {}): PlacementInput {
  const rng = seeded(seed);
  const n = opts.hosts ?? 200;
  const fill = opts.fill ?? 0.75;
  const gens = ['Cascadelake-Server', 'Icelake-Server'];
  const all = Array.from({ length: n }, (_, i) => host(`hv-${String(i).padStart(3, '0')}`, gens[rng.int(0, 1)],
    rng.int(0, 1) === 0 ? { vcpu: 48, memory_mib: 384 * 1024, disk_gib: 4000 } : { vcpu: 96, memory_mib: 512 * 1024, disk_gib: 8000 }));
  const overcommit = { vcpu: 4, memory_mib: 1, disk_gib: 1 };
  const reserve = { memory_mib: 8192 };
  const vms: Vm[] = [];
  for (const h of all) {
    // Each host's own fill, around the fleet's (busy hosts are not all alike).
    const target = (h.capacity.memory_mib - reserve.memory_mib) * Math.min(0.97, Math.max(0.3, fill + (rng.int(0, 200) - 100) / 1000));
    let mem = 0;
    let cpu = 0;
    for (let tries = 0; tries < 50; tries++) {
      const r = azureFlavor(rng);
      if (mem + r.memory_mib > target) continue;
      if (cpu + r.vcpu > h.capacity.vcpu * overcommit.vcpu * 0.9) continue;
      mem += r.memory_mib;
      cpu += r.vcpu;
      const name = `vm-${vms.length}`;
      vms.push({ name, uuid: name, host: h.name, state: 'running', resources: r, storage: rng.int(0, 4) === 0 ? 'local' : 'shared', cpuModel: h.cpuModel });
    }
  }
  // Anti-affinity triplets: three VMs on three different hosts.
  const shuffled = shuffle(rng, [...vms]);
  let group = 0;
  for (let i = 0; i + 3 <= shuffled.length && group * 3 < vms.length / 10; i += 3) {
    const t = shuffled.slice(i, i + 3);
    if (new Set(t.map((v) => v.host)).size < 3) continue;
    for (const v of t) v.antiAffinity = `aa-${group}`;
    group++;
  }
  const order = shuffle(rng, [...all]);
  const drained = new Set(order.slice(0, Math.max(1, Math.round(n * (opts.drained ?? 0.1)))).map((h) => h.name));
  return {
    vms: vms.filter((v) => drained.has(v.host)),
    destinations: all.filter((h) => !drained.has(h.name)),
    sources: all.filter((h) => drained.has(h.name)),
    residents: vms.filter((v) => !drained.has(v.host)),
    settings: { overcommit, reserve, maxUtilization: 1, groups: [], policy: 'pack', seed },
  };
}

/**
 * The baseline: first-fit decreasing under the same rules (capacity after reserve, overcommit
 * and max utilization; CPU model; anti-affinity counting residents), one VM at a time in
 * decreasing memory order. Returns how many VMs it placed.
 */
export function firstFitDecreasingFleet(input: PlacementInput): number {
  return ffdFleet(input).placed;
}

/** First-fit decreasing (as firstFitDecreasingFleet), with the destinations it gave VMs to. */
export function ffdFleet(input: PlacementInput): { placed: number; receiving: number } {
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
  const receiving = new Set<string>();
  for (const vm of [...input.vms].sort((a, b) => b.resources.memory_mib - a.resources.memory_mib)) {
    const need = dims.map((k) => demandOf(vm)[k] ?? 0);
    const h = input.destinations.find((d) => cpuCompatible(vm.cpuModel, d.cpuModel) && !(vm.antiAffinity && groupsOn.get(d.name)!.has(vm.antiAffinity)) && free.get(d.name)!.every((f, i) => need[i] <= f));
    if (!h) continue;
    free.get(h.name)!.forEach((_, i, f) => (f[i] -= need[i]));
    if (vm.antiAffinity) groupsOn.get(h.name)!.add(vm.antiAffinity);
    placed++;
    receiving.add(h.name);
  }
  return { placed, receiving: receiving.size };
}
