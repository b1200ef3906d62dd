/**
 * The exact component as a MIP (HiGHS): where units still wait after the first pass and the
 * ejection search, how many units of each kind go on each host, solved as one integer program:
 * first around the waiting units (the hosts not filled exactly, their units and the waiting
 * ones), then, where units still wait and it is small, over every host (place.ts). A kind is the
 * units alike in demand, in the hosts they may use and in their anti-affinity groups, so the
 * program is small where the fleet has few kinds of VM (a catalogue of flavours), whatever each
 * host's own room (residents).
 *
 *   maximize   sum over host h, kind k of  y[h,k] * (VMs in a unit of k)
 *   subject to sum over k of y[h,k] * demand[k,d] <= room[h,d]   (each host, each resource)
 *              sum over h of y[h,k] <= units of kind k
 *              sum over k in group g of y[h,k] <= 1, or 0 where a resident of g is on h
 *              y[h,k] integer >= 0, only where k may use h
 *
 * Its answer replaces the placement only where it places more VMs; the searches after it go on
 * from there. Deterministic: HiGHS runs single-threaded here, and is stopped by a count of
 * branch-and-bound nodes (from the effort), not by time.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import highsLoader from 'highs';
import type { Model } from './model.ts';

/** HiGHS's C API as the WebAssembly build exports it (highs_c_api.h), and its memory. */
interface HighsModule {
  _malloc(n: number): number;
  _free(p: number): void;
  _Highs_create(): number;
  _Highs_destroy(h: number): void;
  _Highs_getSizeofHighsInt(): number;
  _Highs_getInfinity(h: number): number;
  _Highs_setBoolOptionValue(h: number, name: number, v: number): number;
  _Highs_setIntOptionValue(h: number, name: number, v: number): number;
  _Highs_passMip(h: number, cols: number, rows: number, nz: number, format: number, sense: number, offset: number, cost: number, lower: number, upper: number, rowLower: number, rowUpper: number, start: number, index: number, value: number, integrality: number): number;
  _Highs_run(h: number): number;
  _Highs_getModelStatus(h: number): number;
  _Highs_getIntInfoValue(h: number, name: number, out: number): number;
  _Highs_getSolution(h: number, colValue: number, colDual: number, rowValue: number, rowDual: number): number;
}

/** What of WebAssembly is used here (the project's TypeScript libs do not declare it). */
interface WasmMemory { readonly buffer: ArrayBuffer }
interface WasmInstance { readonly exports: Record<string, unknown> }
type WasmImports = Record<string, Record<string, unknown>>;
const Wasm = (globalThis as unknown as { WebAssembly: { Memory: abstract new (...a: never[]) => WasmMemory; instantiate(b: Uint8Array, i: WasmImports): Promise<{ instance: WasmInstance }> } }).WebAssembly;

/**
 * The program is tried where units are of few kinds (a catalogue of flavours: at most MAX_KINDS,
 * with MANY_EACH units a kind on average) and its (host, kind) pairs are at most MAX_VARS around
 * the waiting units: VMs of sizes drawn at random are each a kind of their own, and HiGHS's root
 * alone would take seconds. 8,000: an operator attack's 400-host fleets of two CPU vendors
 * (6,000 pairs) went from 68.6% to 99.8% placed, in 8 s beside the CI suite.
 */
const MAX_KINDS = 128;
const MANY_EACH = 4;
const MAX_VARS = 8_000;
/** The program over every host (after one around the waiting units left some): smaller, as it is slower to solve. */
const MAX_VARS_ALL = 1_500;
const EPS = 1e-6;
/** Effort per branch-and-bound node, and the effort below which the MIP is not tried (a roll's trial placements). */
const EFFORT_PER_NODE = 80_000;
const MIN_EFFORT = 4_000_000;
/** Work counted against the effort: the root's LP and heuristics, per variable. */
const WORK_PER_VAR = 200;
/** HiGHS model status: optimal. */
const OPTIMAL = 7;

let solver: { mod: HighsModule; memory: WasmMemory } | undefined;
let loading: Promise<void> | undefined;

/**
 * Load HiGHS (WebAssembly, about 80 ms) once per process; place() uses it from then on. A
 * failure to load leaves placement to the searches alone. The module is instantiated here to
 * keep its memory: the package's solve() returns no solution when a node limit stops the
 * search, so the program goes through the C API.
 */
export function loadMip(): Promise<void> {
  loading ??= (async () => {
    const binary = readFileSync(createRequire(import.meta.url).resolve('highs/runtime'));
    let memory: WasmMemory | undefined;
    // A module that fails to instantiate never calls done: that failure ends the load instead of hanging it.
    let failed!: (e: unknown) => void;
    const failure = new Promise<never>((_, reject) => (failed = reject));
    const mod = await Promise.race([failure, (highsLoader as unknown as (arg: object) => Promise<HighsModule>)({
      instantiateWasm(imports: WasmImports, done: (i: WasmInstance) => void) {
        Wasm.instantiate(binary, imports).then(({ instance }) => {
          const all = [...Object.values(instance.exports), ...Object.values(imports).flatMap((m) => Object.values(m))];
          memory = all.find((x): x is WasmMemory => x instanceof Wasm.Memory);
          done(instance);
        }, failed);
        return {};
      },
    })]);
    if (memory && mod._Highs_getSizeofHighsInt() === 4) solver = { mod, memory };
  })().catch(() => undefined);
  return loading;
}

/**
 * Solve max c'y subject to rowLower <= A y <= rowUpper, 0 <= y <= upper, y integer (A row-wise),
 * stopped after maxNodes branch-and-bound nodes. Returns the best solution found, if any.
 */
function solveMip(p: { cost: number[]; upper: number[]; rowUpper: number[]; start: number[]; index: number[]; value: number[] }, maxNodes: number): { values: Float64Array; optimal: boolean } | undefined {
  const { mod, memory } = solver!;
  const held: number[] = [];
  const alloc = (bytes: number) => {
    const ptr = mod._malloc(Math.max(8, bytes));
    if (!ptr) throw new Error('HiGHS: out of memory');
    held.push(ptr);
    return ptr;
  };
  // Views are made after every allocation: the memory may grow and its buffer move.
  const doubles = (xs: ArrayLike<number>) => {
    const ptr = alloc(xs.length * 8);
    new Float64Array(memory.buffer, ptr, xs.length).set(xs);
    return ptr;
  };
  const ints = (xs: ArrayLike<number>) => {
    const ptr = alloc(xs.length * 4);
    new Int32Array(memory.buffer, ptr, xs.length).set(xs);
    return ptr;
  };
  const text = (s: string) => {
    const bytes = new TextEncoder().encode(`${s}\0`);
    const ptr = alloc(bytes.length);
    new Uint8Array(memory.buffer, ptr, bytes.length).set(bytes);
    return ptr;
  };
  const h = mod._Highs_create();
  try {
    const cols = p.cost.length;
    const rows = p.rowUpper.length;
    const inf = mod._Highs_getInfinity(h);
    mod._Highs_setBoolOptionValue(h, text('output_flag'), 0);
    mod._Highs_setIntOptionValue(h, text('mip_max_nodes'), maxNodes);
    // Maximize (sense -1), row-wise matrix (format 2), every column integer (1).
    const status = mod._Highs_passMip(h, cols, rows, p.value.length, 2, -1, 0, doubles(p.cost), doubles(new Float64Array(cols)), doubles(p.upper),
      doubles(new Float64Array(rows).fill(-inf)), doubles(p.rowUpper), ints(p.start), ints(p.index), doubles(p.value), ints(new Int32Array(cols).fill(1)));
    if (status < 0 || mod._Highs_run(h) < 0) return undefined;
    const out = alloc(4);
    // primal_solution_status 2: a feasible solution is held.
    if (mod._Highs_getIntInfoValue(h, text('primal_solution_status'), out) < 0 || new Int32Array(memory.buffer, out, 1)[0] !== 2) return undefined;
    const colValue = alloc(cols * 8);
    const rowValue = alloc(rows * 8);
    const colDual = alloc(cols * 8);
    const rowDual = alloc(rows * 8);
    if (mod._Highs_getSolution(h, colValue, colDual, rowValue, rowDual) < 0) return undefined;
    return { values: new Float64Array(memory.buffer, colValue, cols).slice(), optimal: mod._Highs_getModelStatus(h) === OPTIMAL };
  } finally {
    mod._Highs_destroy(h);
    for (const ptr of held) mod._free(ptr);
  }
}

export interface MipResult {
  /** Work counted against the effort. */
  work: number;
  /** The program was solved to optimality: no placement of these units places more. */
  optimal: boolean;
}

/**
 * Solve the program for the hopeful units (those that fit somewhere) and take its answer where it
 * places more VMs than the model does now. Returns the work spent.
 */
export function mipRepack(m: Model, hopeful: number[], effort: number, around: boolean): MipResult {
  const none = { work: 0, optimal: false };
  if (!solver || effort < MIN_EFFORT) return none;
  const { D, H } = m;
  // Kinds: units alike in demand, eligible hosts (one array per class) and anti-affinity groups.
  const eligibleId = new Map<Uint8Array, number>();
  const kinds: { units: number[]; vms: number }[] = [];
  const byKey = new Map<string, number>();
  // Around the waiting units: the hosts not filled exactly (room left in a resource some unit
  // needs), the units on them and those waiting; the hosts filled exactly keep theirs.
  let open: Uint8Array | undefined;
  if (around) {
    open = new Uint8Array(H);
    const needs = new Uint8Array(D);
    for (const u of hopeful) for (let d = 0; d < D; d++) if (m.dem[u * D + d] > 0) needs[d] = 1;
    for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) if (needs[d] && m.lim[h * D + d] - m.load[h * D + d] > EPS) open[h] = 1;
    hopeful = hopeful.filter((u) => m.at[u] < 0 || open![m.at[u]] === 1);
  }
  for (const u of hopeful) {
    if (m.torn[u]) continue;
    let e = eligibleId.get(m.eligible[u]);
    if (e === undefined) eligibleId.set(m.eligible[u], (e = eligibleId.size));
    const dem = Array.from(m.dem.subarray(u * D, u * D + D)).join(',');
    const key = `${e}|${dem}|${Array.from(m.groups[u]).join(',')}|${m.units[u].length}`;
    let k = byKey.get(key);
    if (k === undefined) {
      byKey.set(key, (k = kinds.length));
      kinds.push({ units: [], vms: m.units[u].length });
    }
    kinds[k].units.push(u);
  }
  let vars = 0;
  let units = 0;
  const hostsOf = (u: number) => (open ? Array.from(m.eligibleList[u]).filter((h) => open![h] === 1) : m.eligibleList[u]);
  for (const k of kinds) {
    vars += hostsOf(k.units[0]).length;
    units += k.units.length;
  }
  // A proof needs whole demands: the rooms are rounded down to whole units.
  const whole = kinds.every((k) => Array.from(m.dem.subarray(k.units[0] * D, k.units[0] * D + D)).every((x) => Number.isInteger(x)));
  if (vars === 0 || vars > (around ? MAX_VARS : MAX_VARS_ALL) || kinds.length > MAX_KINDS || units < MANY_EACH * kinds.length) return none;
  const work = vars * WORK_PER_VAR;

  // VMs placed of the units in the program (those on the hosts it does not cover stay out of both counts).
  const placedNow = () => hopeful.reduce((s, u) => s + (m.at[u] >= 0 ? m.units[u].length : 0), 0);
  const placedBefore = placedNow();
  const saved = m.snapshot();
  for (const u of hopeful) m.remove(u);
  // Room beside what stays (residents, and any unit not in hopeful).
  const room = (h: number, d: number) => m.lim[h * D + d] - m.load[h * D + d];

  // Columns: one per (kind, host it may use). Rows: per kind its count, per host and resource its
  // room, per anti-affinity group and host at most one.
  const colKind: number[] = [];
  const colHost: number[] = [];
  const cost: number[] = [];
  const upper: number[] = [];
  const rowTerms: [number, number][][] = [];
  const rowUpper: number[] = [];
  const hostRow = new Map<number, number>();
  const groupRow = new Map<string, number>();
  const row = (bound: number) => {
    rowTerms.push([]);
    rowUpper.push(bound);
    return rowTerms.length - 1;
  };
  kinds.forEach((k, i) => {
    const u = k.units[0];
    const count = row(k.units.length);
    for (const h of hostsOf(u)) {
      const c = cost.length;
      colKind.push(i);
      colHost.push(h);
      cost.push(k.vms);
      upper.push(k.units.length);
      rowTerms[count].push([c, 1]);
      for (let d = 0; d < D; d++) {
        const need = m.dem[u * D + d];
        if (need <= 0) continue;
        let r = hostRow.get(h * D + d);
        // Whole units of whole resources: room is rounded down (a hair of float never adds a unit).
        if (r === undefined) hostRow.set(h * D + d, (r = row(Math.max(0, Math.floor(room(h, d) + 1e-6)))));
        rowTerms[r].push([c, need]);
      }
      for (const g of m.groups[u]) {
        let r = groupRow.get(`${g},${h}`);
        if (r === undefined) groupRow.set(`${g},${h}`, (r = row(m.antiCount[g * H + h] > 0 ? 0 : 1)));
        rowTerms[r].push([c, 1]);
      }
    }
  });
  const start: number[] = [];
  const index: number[] = [];
  const value: number[] = [];
  for (const terms of rowTerms) {
    start.push(index.length);
    for (const [c, a] of terms) {
      index.push(c);
      value.push(a);
    }
  }

  let r: ReturnType<typeof solveMip>;
  try {
    r = solveMip({ cost, upper, rowUpper, start, index, value }, Math.max(1, Math.floor(effort / EFFORT_PER_NODE)));
  } catch {
    // A WebAssembly abort leaves the instance unusable: no MIP for the rest of the process.
    solver = undefined;
    r = undefined;
  }
  let total = 0;
  if (r) for (let c = 0; c < cost.length; c++) total += Math.round(r.values[c]) * cost[c];
  if (!r || total <= placedBefore) {
    m.restore(saved);
    return { ...none, work, optimal: !open && whole && r?.optimal === true && total <= placedBefore };
  }
  // Its counts onto the units of each kind; every insert is checked again by the model's own rules.
  const next = new Array<number>(kinds.length).fill(0);
  for (let c = 0; c < cost.length; c++) {
    const k = kinds[colKind[c]];
    const h = colHost[c];
    for (let n = Math.round(r.values[c]); n > 0 && next[colKind[c]] < k.units.length; n--) {
      const u = k.units[next[colKind[c]]];
      if (!m.fits(u, h)) break;
      m.insert(u, h);
      next[colKind[c]]++;
    }
  }
  const placed = placedNow();
  if (placed <= placedBefore) {
    m.restore(saved);
    return { ...none, work };
  }
  return { work, optimal: !open && whole && r.optimal && placed === total };
}
