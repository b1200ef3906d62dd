/**
 * npm run bench:placement — placement quality, scale and tight fleets, each against a plain
 * first-fit-decreasing baseline run in the same process. Prints figures; asserts nothing.
 *
 *   --only busy,scale,tight,quality   parts to run (default: all, in that order)
 *   --sets Panigrahy,New         --dims 3,5,10       --every N (every Nth instance, for a quick look)
 *   --no-mip                     the searches without the MIP step (placement/mip.ts), for a comparison
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMip } from '../placement/mip.ts';
import { place } from '../placement/place.ts';
import { busyFleet, CATALOGUE, ffdFleet, firstFitDecreasingFleet, largeFleet, tightFleet, type SizeLaw } from './fleets.ts';
import { asPlacement, firstFitDecreasing, readKnown, readSet } from './vbp.ts';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'busy,scale,tight,quality' },
    sets: { type: 'string', default: 'Panigrahy,New' },
    dims: { type: 'string', default: '3,5,10' },
    every: { type: 'string', default: '1' },
    'no-mip': { type: 'boolean', default: false },
  },
});
const parts = new Set(args.only.split(','));
// The MIP step (placement/mip.ts), as evacuator plan and run load it; --no-mip: the searches alone.
await loadMip();
const placeIt = (input: Parameters<typeof place>[0]) => place(args['no-mip'] ? { ...input, settings: { ...input.settings, mip: false } } : input);
const VBP = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/bench/vbp');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

if (parts.has('busy')) {
  console.log('## Busy fleets: 200 hosts (48/384 and 96/512), two CPU generations, Azure V1 flavours, anti-affinity triplets; 10% drained onto the rest (10 seeds per row)');
  console.log('fill | evacuator: receiving hosts (sum) | FFD: receiving hosts (sum) | evacuator/FFD (sum) | worst instance ratio | placed: evacuator / FFD / VMs | evacuator ms (median)');
  for (const fill of [0.6, 0.75, 0.85]) {
    let ours = 0, ffd = 0, worst = 0, placed = 0, ffdPlaced = 0, vms = 0;
    const ms: number[] = [];
    for (let seed = 101; seed <= 110; seed++) {
      const input = busyFleet(seed, { fill });
      const t0 = performance.now();
      const out = placeIt(input);
      ms.push(performance.now() - t0);
      const f = ffdFleet(input);
      ours += out.destinationsUsed;
      ffd += f.receiving;
      worst = Math.max(worst, out.destinationsUsed / f.receiving);
      placed += out.assignments.length;
      ffdPlaced += f.placed;
      vms += input.vms.length;
    }
    console.log(`${fill.toFixed(2)} | ${String(ours).padStart(32)} | ${String(ffd).padStart(26)} | ${(ours / ffd).toFixed(3).padStart(19)} | ${worst.toFixed(3).padStart(20)} | ${placed} / ${ffdPlaced} / ${vms} | ${median(ms).toFixed(0).padStart(6)}`);
  }
  console.log('');
}

if (parts.has('scale')) {
  console.log('## Scale: 10,000 VMs on 100 source hosts onto 1,000 destinations (half already busy), anti-affinity groups, 3 CPU classes');
  const input = largeFleet(10_000, 100, 1_000);
  const ours: number[] = [];
  const ffd: number[] = [];
  let out = placeIt(input);
  let ffdPlaced = 0;
  for (let i = 0; i < 5; i++) {
    let t0 = performance.now();
    out = placeIt(input);
    ours.push(performance.now() - t0);
    t0 = performance.now();
    ffdPlaced = firstFitDecreasingFleet(input);
    ffd.push(performance.now() - t0);
  }
  console.log(`evacuator: ${out.assignments.length} placed, ${out.unplaced.length} unplaced, ${out.destinationsUsed} destinations receive VMs; median ${median(ours).toFixed(0)} ms of 5 runs`);
  console.log(`FFD baseline: ${ffdPlaced} placed; median ${median(ffd).toFixed(0)} ms (evacuator/FFD time: ${(median(ours) / median(ffd)).toFixed(2)}x)`);
  console.log(`peak memory (max RSS of this process so far): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB\n`);
}

if (parts.has('tight')) {
  console.log('## Tight fleets: destinations exactly full in a hidden placement (20 fleets per row)');
  console.log('size law: each resource cut on its own (independent); memory and disk following vCPU as flavours do (flavours); one VM of 40-60% and the rest (big-small); memory and disk following vCPU exactly on hosts of two shapes (two-shapes); six flavours of a cloud\'s catalogue on hosts of two shapes (catalogue); all fifteen flavours of the catalogue (1-16 vCPU, 2, 4 or 8 GiB a vCPU) on 64-thread / 256 GiB hosts (full-catalogue); +aa4: anti-affinity groups of four VMs from four hosts of the hidden placement, two per four hosts; 2sh: the fifteen flavours on hosts of 60 vCPU / 256 GiB and 92 vCPU / 192 GiB (32 and 48 threads, vCPU overcommitted 2x after 2 reserved); +2big: the fifteen and 32 vCPU / 256 GiB and 48 / 192 GiB on 128-thread / 512 GiB hosts; triplets: 3 VMs a host, as the issue\'s own family');
  console.log('law | hosts | VMs/host | evacuator: VMs placed | fleets complete | FFD: VMs placed | fleets complete | evacuator ms (median)');
  // Two shapes of the fifteen flavours: 32 threads / 256 GiB and 48 / 192 GiB, vCPU overcommitted 2x after a reserve of 2 threads.
  const twoShapes = [{ vcpu: 60, memory_mib: 262144, disk_gib: 1200 }, { vcpu: 92, memory_mib: 196608, disk_gib: 1840 }];
  const rows: [SizeLaw, number, [number, number], { antiGroups?: number; caps?: typeof twoShapes; flavours?: [number, number][] }?][] = [
    ['independent', 10, [3, 6]], ['independent', 50, [3, 6]], ['independent', 200, [3, 6]], ['independent', 50, [6, 10]],
    ['independent', 100, [3, 3]], ['flavours', 50, [3, 6]], ['flavours', 200, [2, 8]], ['big-small', 50, [3, 6]],
    ['two-shapes', 50, [3, 6]], ['two-shapes', 50, [6, 10]], ['catalogue', 50, [6, 10]], ['catalogue', 200, [4, 8]],
    ['full-catalogue', 50, [2, 12]], ['full-catalogue', 200, [2, 12]], ['independent', 100, [3, 6], { antiGroups: 4 }],
    ['full-catalogue', 100, [2, 12], { antiGroups: 4 }], ['full-catalogue', 100, [2, 12], { caps: twoShapes }], ['full-catalogue', 400, [2, 12], { caps: twoShapes }],
    ['full-catalogue', 60, [8, 20], { caps: [{ vcpu: 128, memory_mib: 524288, disk_gib: 2560 }], flavours: [...CATALOGUE, [32, 256], [48, 192]] }],
  ];
  for (const [law, hosts, per, opts] of rows) {
    let vms = 0, placed = 0, complete = 0, ffdPlaced = 0, ffdComplete = 0;
    const ms: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const input = tightFleet(hosts, per, seed, law, opts);
      const t0 = performance.now();
      const out = placeIt(input);
      ms.push(performance.now() - t0);
      const f = firstFitDecreasingFleet(input);
      vms += input.vms.length;
      placed += out.assignments.length;
      complete += out.unplaced.length === 0 ? 1 : 0;
      ffdPlaced += f;
      ffdComplete += f === input.vms.length ? 1 : 0;
    }
    console.log(`${(law + (opts?.antiGroups ? ` +aa${opts.antiGroups}` : '') + (opts?.flavours ? ' +2big' : opts?.caps ? ' 2sh' : '')).padStart(14)} | ${String(hosts).padStart(5)} | ${per.join('-').padStart(8)} | ${pct(placed / vms).padStart(21)} | ${`${complete}/20`.padStart(15)} | ${pct(ffdPlaced / vms).padStart(15)} | ${`${ffdComplete}/20`.padStart(15)} | ${median(ms).toFixed(0).padStart(6)}`);
  }
  console.log('');
}

if (parts.has('quality')) {
  console.log('## Quality: public vector bin packing sets, policy pack, default effort');
  console.log('set | d | instances | hosts used | FFD | evacuator/FFD | published best_overall | LB | mean gap to OPT: evacuator / best_overall (n) | at LB | ms per instance: mean / max');
  const every = Number(args.every);
  for (const set of args.sets.split(',')) {
    const all = await readSet(VBP, set);
    const known = readKnown(VBP, set);
    for (const d of args.dims.split(',').map(Number)) {
      const insts = all.filter((i) => i.d === d).filter((_, i) => i % every === 0);
      let used = 0, ffd = 0, best = 0, lb = 0, gap = 0, gapBest = 0, withOpt = 0, atLb = 0, total = 0, max = 0;
      for (const inst of insts) {
        const k = known.get(inst.name);
        if (!k) throw new Error(`${inst.name} is not in ${set}_summary_known.csv`);
        const input = asPlacement(inst);
        const t0 = performance.now();
        const out = placeIt(input);
        const ms = performance.now() - t0;
        if (out.unplaced.length > 0) throw new Error(`${inst.name}: ${out.unplaced.length} items left unplaced`);
        const n = out.destinationsUsed;
        [used, ffd, best, lb, total, max] = [used + n, ffd + firstFitDecreasing(inst), best + k.bestOverall, lb + k.lb, total + ms, Math.max(max, ms)];
        if (n === k.lb) atLb++;
        if (k.opt > 0) {
          withOpt++;
          gap += (n - k.opt) / k.opt;
          gapBest += (k.bestOverall - k.opt) / k.opt;
        }
      }
      console.log(`${set} | ${d} | ${insts.length} | ${used} | ${ffd} | ${(used / ffd).toFixed(4)} | ${best} | ${lb} | ${pct(gap / withOpt)} / ${pct(gapBest / withOpt)} (${withOpt}) | ${atLb} | ${(total / insts.length).toFixed(0)} / ${max.toFixed(0)}`);
    }
  }
}
