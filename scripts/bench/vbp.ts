/**
 * The public vector bin packing sets (../shared/bench/vbp, read in place): instances from the
 * tarballs and the published per-instance results, and an instance read as a placement input
 * (identical empty destination hosts, one VM per item, policy pack).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import type { Host, Vm } from '../fleet/types.ts';
import type { PlacementInput } from '../placement/place.ts';

export interface Instance {
  name: string;
  d: number;
  capacity: number[];
  /** One size vector per item (item types expanded by their counts). */
  items: number[][];
}

export interface Known {
  lb: number;
  /** -1 where unknown. */
  opt: number;
  bestOverall: number;
}

/** Every instance of a set (Panigrahy, New), in name order. */
export async function readSet(dir: string, set: string): Promise<Instance[]> {
  const texts: { name: string; text: string }[] = [];
  await tar.t({
    file: join(dir, `${set}_instances.tar.gz`),
    onReadEntry: (entry) => {
      if (!entry.path.endsWith('.vbp')) return entry.resume();
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => texts.push({ name: entry.path.split('/').pop()!.replace(/\.vbp$/, ''), text: Buffer.concat(chunks).toString('utf8') }));
    },
  });
  return texts.map(({ name, text }) => parseVbp(name, text)).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

export function parseVbp(name: string, text: string): Instance {
  const lines = text.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
  const d = lines[0][0];
  const capacity = lines[1];
  const m = lines[2][0];
  const items: number[][] = [];
  for (let i = 0; i < m; i++) {
    const row = lines[3 + i];
    for (let c = 0; c < row[d]; c++) items.push(row.slice(0, d));
  }
  return { name, d, capacity, items };
}

/** The published results per instance name. */
export function readKnown(dir: string, set: string): Map<string, Known> {
  const [head, ...rows] = readFileSync(join(dir, `${set}_summary_known.csv`), 'utf8').trim().split('\n').map((l) => l.split('\t'));
  const col = (k: string) => head.indexOf(k);
  return new Map(rows.map((r) => [r[0], { lb: Number(r[col('LB')]), opt: Number(r[col('OPT')]), bestOverall: Number(r[col('best_overall')]) }]));
}

/** Resource names for d dimensions: the three core ones, then named ones. */
export function resourceNames(d: number): string[] {
  const core = ['vcpu', 'memory_mib', 'disk_gib'];
  return Array.from({ length: d }, (_, i) => core[i] ?? `r${i + 1}`);
}

/** An instance as a placement: as many identical empty hosts as items, nothing overcommitted or reserved. */
export function asPlacement(inst: Instance, seed = 1): PlacementInput {
  const names = resourceNames(inst.d);
  const res = (v: number[]) => Object.fromEntries(names.map((k, i) => [k, v[i]]));
  const destinations: Host[] = inst.items.map((_, i) => ({ name: `h${i}`, uuid: `h${i}`, cpuModel: 'host', hypervisor: { type: 'QEMU', version: '8.2.0' }, capacity: res(inst.capacity), labels: {} }));
  const source: Host = { name: 'src', uuid: 'src', cpuModel: 'host', hypervisor: { type: 'QEMU', version: '8.2.0' }, capacity: {}, labels: {} };
  const vms: Vm[] = inst.items.map((item, i) => ({ name: `vm${i}`, uuid: `vm${i}`, host: 'src', state: 'running', resources: res(item), storage: 'local', cpuModel: 'host' }));
  const ones = Object.fromEntries(names.map((k) => [k, 1]));
  return { vms, destinations, sources: [source], residents: [], settings: { overcommit: ones, reserve: {}, maxUtilization: 1, groups: [], policy: 'pack', seed } };
}

/** The baseline: plain first-fit decreasing, items ordered by the sum of their sizes over capacity. */
export function firstFitDecreasing(inst: Instance): number {
  const size = (v: number[]) => v.reduce((s, x, i) => s + x / inst.capacity[i], 0);
  const items = [...inst.items].sort((a, b) => size(b) - size(a));
  const bins: number[][] = [];
  for (const item of items) {
    const bin = bins.find((b) => b.every((used, i) => used + item[i] <= inst.capacity[i]));
    if (bin) bin.forEach((_, i) => (bin[i] += item[i]));
    else bins.push([...item]);
  }
  return bins.length;
}
