/**
 * npm run bench:rebalance — rebalancing skewed fleets to a memory ceiling.
 *
 * Large fleets (up to 1,000 hosts, 20,000 VMs): evacuator's planner against a greedy baseline in
 * the same run, as Watcher's workload balancing does it: repeatedly move, from the hottest host,
 * the VM (to the coolest host it fits on) that lowers the spread of utilization most. Target
 * reached or not, bytes moved and migrations, and the bytes ratio.
 * Small fleets (up to 10 hosts, 60 VMs): evacuator's bytes against the exact minimum from a MIP
 * (HiGHS) in the same run. Prints figures; asserts nothing.
 *
 *   --only large,small    --seeds N (fleets per size, default 5; small: 4x that)
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import highsLoader from 'highs';
import { randomShape } from '../fleet/sim/fleet.ts';
import { demandOf, type Host, type Resources, type Vm } from '../fleet/types.ts';
import { schemaDefault } from '../plan/defaults.ts';
import { Ledger } from '../placement/ledger.ts';
import { bytesOf, planRebalance, type RebalanceInput } from '../placement/rebalance.ts';
import { seeded, type Random } from '../random.ts';

const { values: args } = parseArgs({ options: { only: { type: 'string', default: 'large,small' }, seeds: { type: 'string', default: '5' } } });
const parts = new Set(args.only.split(','));
const SEEDS = Number(args.seeds);
const CEILING = 0.75;
const GiB = 2 ** 30;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** The plan's default overcommit, no reserve. */
const settings = { overcommit: schemaDefault<Resources>('/definitions/Placement/properties/overcommit'), reserve: {}, groups: [] };

/** A skewed fleet: a fifth of the hosts hot (85-97% of memory), the rest 30-65%; a fifth of the VMs on local disks; anti-affinity pairs. */
export function skewedFleet(hosts: number, vmsPerHost: number, rng: Random): RebalanceInput {
  const memory = vmsPerHost * 8192 * 1.6;
  const hs: Host[] = Array.from({ length: hosts }, (_, i) => ({
    name: `h${String(i + 1).padStart(4, '0')}`, uuid: `h${i}`, cpuModel: 'Skylake-Server', hypervisor: { type: 'QEMU', version: '8.2.0' }, labels: {},
    capacity: { vcpu: 128, memory_mib: memory, disk_gib: 40000 },
  }));
  const vms: Vm[] = [];
  let n = 0;
  for (const h of hs) {
    const hot = rng.int(0, 4) === 0;
    const fill = (hot ? rng.int(85, 97) : rng.int(30, 65)) / 100;
    let used = 0;
    for (;;) {
      const shape = randomShape(rng);
      if (used + shape.memory_mib > fill * memory) break;
      used += shape.memory_mib;
      n++;
      vms.push({
        name: `vm${n}`, uuid: `vm${n}`, host: h.name, state: 'running', cpuModel: 'Skylake-Server',
        resources: { vcpu: shape.vcpu, memory_mib: shape.memory_mib, disk_gib: shape.disk_gib },
        storage: rng.int(0, 4) === 0 ? 'local' : 'shared',
        ...(rng.int(0, 9) === 0 ? { antiAffinity: `ag${rng.int(1, Math.max(1, Math.floor(hosts / 2)))}` } : {}),
      });
    }
  }
  return { hosts: hs, vms, pinned: new Set(), settings, target: { ceiling: { memory_mib: CEILING } }, budget: {} };
}

/** Watcher-style: from the hottest host, the single move that lowers the spread most, again and again. */
export function greedyBaseline(input: RebalanceInput) {
  const ledger = new Ledger(input.hosts, new Map(input.hosts.map((h) => [h.name, h])), input.vms, { ...input.settings, maxUtilization: 1 });
  const cap = new Map(input.hosts.map((h) => [h.name, h.capacity.memory_mib]));
  const mem = new Map(input.hosts.map((h) => [h.name, 0]));
  const on = new Map<string, Vm[]>(input.hosts.map((h) => [h.name, []]));
  for (const v of input.vms) {
    ledger.settle(v);
    mem.set(v.host, mem.get(v.host)! + v.resources.memory_mib);
    on.get(v.host)!.push(v);
  }
  const util = (h: string, m = mem.get(h)!) => m / cap.get(h)!;
  let sum = 0;
  let sq = 0;
  for (const h of mem.keys()) {
    sum += util(h);
    sq += util(h) ** 2;
  }
  const N = mem.size;
  const variance = (s: number, q: number) => q / N - (s / N) ** 2;
  let bytes = 0;
  let moves = 0;
  const byName = new Map(input.hosts.map((h) => [h.name, h]));
  for (let step = 0; step < input.vms.length * 2; step++) {
    const hot = [...mem.keys()].reduce((a, b) => (util(a) >= util(b) ? a : b));
    if (util(hot) <= CEILING + 1e-9) break;
    let best: { v: Vm; to: string; var: number } | undefined;
    const current = variance(sum, sq);
    const cool = [...mem.keys()].filter((h) => h !== hot).sort((a, b) => util(a) - util(b));
    for (const v of on.get(hot)!) {
      // The coolest host it fits on, within the ceiling.
      const to = cool.find((h) => util(h, mem.get(h)! + v.resources.memory_mib) <= CEILING && !ledger.refuse([v], byName.get(h)!));
      if (!to) continue;
      const a0 = util(hot);
      const a1 = util(hot, mem.get(hot)! - v.resources.memory_mib);
      const b0 = util(to);
      const b1 = util(to, mem.get(to)! + v.resources.memory_mib);
      const nv = variance(sum - a0 - b0 + a1 + b1, sq - a0 ** 2 - b0 ** 2 + a1 ** 2 + b1 ** 2);
      if (nv < current - 1e-12 && (!best || nv < best.var)) best = { v, to, var: nv };
    }
    if (!best) break;
    const { v, to } = best;
    const a0 = util(hot);
    const b0 = util(to);
    ledger.commit(v, to);
    mem.set(hot, mem.get(hot)! - v.resources.memory_mib);
    mem.set(to, mem.get(to)! + v.resources.memory_mib);
    on.set(hot, on.get(hot)!.filter((x) => x !== v));
    on.get(to)!.push(v);
    sum += util(hot) + util(to) - a0 - b0;
    sq += util(hot) ** 2 + util(to) ** 2 - a0 ** 2 - b0 ** 2;
    bytes += bytesOf(v);
    moves++;
  }
  const reached = [...mem.keys()].every((h) => util(h) <= CEILING + 1e-9);
  return { reached, bytes, moves };
}

/** The exact minimum bytes moved, from a MIP: x[v][h] = VM v ends on host h. */
type Highs = { solve(lp: string, options?: object): { Status: string; ObjectiveValue: number; Columns: Record<string, { Primal: number }> } };
const loadHighs = highsLoader as unknown as () => Promise<Highs>;

export function exactMinimum(highs: Highs, input: RebalanceInput): number | undefined {
  const { hosts, vms } = input;
  const MiB = 2 ** 20;
  const x = (i: number, j: number) => `x_${i}_${j}`;
  const obj: string[] = [];
  const rows: string[] = [];
  const bins: string[] = [];
  vms.forEach((v, i) => {
    const terms: string[] = [];
    hosts.forEach((h, j) => {
      bins.push(x(i, j));
      terms.push(x(i, j));
      if (h.name !== v.host) obj.push(`${Math.round(bytesOf(v) / MiB)} ${x(i, j)}`);
    });
    rows.push(` one_${i}: ${terms.join(' + ')} = 1`);
  });
  hosts.forEach((h, j) => {
    for (const k of ['memory_mib', 'vcpu', 'disk_gib']) {
      const lim = (h.capacity[k] ?? 0) * (input.settings.overcommit[k as 'vcpu'] ?? 1) * (k === 'memory_mib' ? CEILING : 1);
      const terms = vms.map((v, i) => `${demandOf(v)[k] ?? 0} ${x(i, j)}`).filter((t) => !t.startsWith('0 '));
      if (terms.length) rows.push(` cap_${k}_${j}: ${terms.join(' + ')} <= ${Math.floor(lim)}`);
    }
    const groups = new Map<string, number[]>();
    vms.forEach((v, i) => v.antiAffinity && groups.set(v.antiAffinity, [...groups.get(v.antiAffinity) ?? [], i]));
    for (const [g, members] of groups) if (members.length > 1) rows.push(` anti_${g}_${j}: ${members.map((i) => x(i, j)).join(' + ')} <= 1`);
  });
  const lp = `Minimize\n obj: ${obj.join(' + ') || '0 x_0_0'}\nSubject To\n${rows.join('\n')}\nBinary\n ${bins.join(' ')}\nEnd\n`;
  const r = highs.solve(lp, { output_flag: false, time_limit: 60 });
  return r.Status === 'Optimal' ? r.ObjectiveValue * MiB : undefined;
}

const gib = (b: number) => `${(b / GiB).toFixed(0)} GiB`;

if (parts.has('large')) {
  console.log(`## Skewed fleets to memory <= ${CEILING * 100}%: evacuator against the greedy baseline (Watcher-style), ${SEEDS} fleets per size`);
  console.log('| hosts | VMs | reached (ours / greedy) | bytes moved (ours / greedy) | ratio | migrations (ours / greedy) | time ms (ours / greedy) |');
  console.log('|---:|---:|---|---|---:|---|---|');
  const ratios: number[] = [];
  let onlyBaseline = 0;
  for (const [hosts, perHost] of [[20, 20], [100, 20], [500, 25], [1000, 34]] as const) {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const input = skewedFleet(hosts, perHost, seeded(hosts * 1000 + seed));
      let t0 = performance.now();
      const ours = planRebalance(input);
      const tOurs = performance.now() - t0;
      t0 = performance.now();
      const base = greedyBaseline(input);
      const tBase = performance.now() - t0;
      if (base.reached && !ours.reached) onlyBaseline++;
      if (base.reached && base.bytes > 0) ratios.push(ours.bytes / base.bytes);
      console.log(`| ${hosts} | ${input.vms.length} | ${ours.reached ? 'yes' : 'no'} / ${base.reached ? 'yes' : 'no'} | ${gib(ours.bytes)} / ${gib(base.bytes)} | ${base.bytes ? (ours.bytes / base.bytes).toFixed(3) : '-'} | ${ours.moves.length} / ${base.moves} | ${tOurs.toFixed(0)} / ${tBase.toFixed(0)} |`);
    }
  }
  console.log(`\nMedian bytes ratio (ours / greedy) where the greedy reaches the target: ${median(ratios).toFixed(3)} over ${ratios.length} fleets; fleets the greedy reaches and evacuator does not: ${onlyBaseline}\n`);
}

if (parts.has('small')) {
  const highs = await loadHighs();
  console.log(`## Small fleets (6-10 hosts, up to 60 VMs): evacuator against the exact minimum (MIP, HiGHS), ${SEEDS * 4} fleets`);
  const ratios: number[] = [];
  let exact = 0;
  let infeasible = 0;
  let ourMiss = 0;
  let balanced = 0;
  let tMip = 0;
  let tOurs = 0;
  for (let seed = 1; seed <= SEEDS * 4; seed++) {
    const rng = seeded(77_000 + seed);
    const hosts = rng.int(6, 10);
    const input = skewedFleet(hosts, 7, rng);
    while (input.vms.length > 60) input.vms.pop();
    let t0 = performance.now();
    const ours = planRebalance(input);
    tOurs += performance.now() - t0;
    t0 = performance.now();
    const best = exactMinimum(highs, input);
    tMip += performance.now() - t0;
    if (best === undefined) {
      infeasible++;
      continue;
    }
    if (!ours.reached) {
      ourMiss++;
      continue;
    }
    if (best === 0) {
      if (ours.bytes === 0) balanced++;
      else ratios.push(Infinity);
      continue;
    }
    ratios.push(ours.bytes / best);
    if (Math.abs(ours.bytes - best) < 1) exact++;
  }
  console.log(`instances: ${SEEDS * 4}; already under the target: ${balanced}; the target cannot be reached at all: ${infeasible}; reachable but missed by evacuator: ${ourMiss}`);
  console.log(`bytes ratio ours / exact: median ${median(ratios).toFixed(4)}, worst ${Math.max(...ratios).toFixed(4)} over ${ratios.length}; exactly optimal: ${exact}`);
  console.log(`time: evacuator ${(tOurs / (SEEDS * 4)).toFixed(1)} ms per fleet, MIP ${(tMip / (SEEDS * 4)).toFixed(0)} ms per fleet`);
}
