/** The JSON report: one object that the HTML page, the terminal summary and CI all read. */
import { nicMibpsOf, usedByHost, type Inventory, type Resources } from '../fleet/types.ts';
import { ExitCode } from '../errors.ts';
import type { Blueprint, RebalanceSummary } from '../preflight/blueprint.ts';
import type { FailReason, HostProof, VmResult } from '../model.ts';
import type { RunResult } from '../runner/run.ts';

/** One migration attempt of a VM. Times are seconds from the start of the evacuation. */
export interface ReportAttempt {
  method: 'live' | 'cold';
  destination: string;
  /** ok, or why it failed, classified from where the VM was found afterwards. */
  outcome: 'ok' | FailReason;
  /** What happened, in words. */
  detail: string;
  startS: number;
  endS: number;
  durationS: number;
  /** Bytes sent over the network. */
  bytes: number;
  /** Time the guest did not run, ms (0 for a failed attempt). */
  downtimeMs: number;
}

/** A VM's result as the report shows it: the runner's result with times in seconds from the start. */
export interface ReportVm extends Omit<VmResult, 'attempts'> {
  /** Start of its first attempt (null: never attempted). */
  startS: number | null;
  endS: number | null;
  durationS: number | null;
  bytes: number;
  downtimeMs: number;
  attempts: ReportAttempt[];
  /** Where the final check found it, when that differs from host (moved since, or gone); "?" when its host did not answer. */
  foundAtEnd?: string;
  /** What the plan estimated its move would take, seconds (null: it would not converge at full rate). */
  estimateS?: number | null;
}

/** A host's resources used before and after the run, against its capacity (before overcommit). */
export interface ReportHost {
  name: string;
  role: 'source' | 'destination';
  capacity: Resources;
  /** What the plan lets it hold: (capacity - reserve) x overcommit, per resource. */
  limit?: Resources;
  before: Resources;
  /** null when the final check could not read the fleet. */
  after: Resources | null;
  /** It did not answer the final check (down, partitioned): what it holds now is unknown. */
  down?: true;
}

/** The JSON report of a run (schemas/report.schema.json is generated from this type: npm run gen:types). */
export interface Report {
  version: 1;
  /** The plan's name, file and sha256 digest. */
  plan: Blueprint['plan'];
  driver: string;
  /** ISO 8601 wall-clock times of the evacuation (a resumed one: from its first run). */
  startedAt: string;
  endedAt: string;
  result: 'complete' | 'incomplete' | 'interrupted';
  exitCode: number;
  totals: {
    vms: number; moved: number; live: number; cold: number;
    /** Left in place, for any reason. */
    left: number;
    /** Left in place after a migration of theirs failed. */
    failed: number;
    unplaced: number; pinned: number;
    bytes: number;
    /** Seconds from the first migration's start to the last one's end. */
    makespanS: number;
    /** No evacuation of these VMs can be faster: the busiest link after one migration's set-up, or the longest single stream (no faster than the stream ceiling) with its set-up (field-notes.md), each VM sending its local disk and, moved live, the least memory its pre-copy can send alone at its best rate. */
    lowerBoundS: number;
    sourcesEmpty: number; sources: number;
    /** Planned estimates against what the moves took (VMs moved in one attempt, live or cold): how many, and the median of actual / estimated. */
    estimates?: { compared: number; medianRatio: number };
  };
  hosts: ReportHost[];
  vms: ReportVm[];
  proofs: HostProof[];
  warnings: string[];
  /** A rebalance: target, planned bytes, and each host's utilization before, as planned, and after. */
  rebalance?: ReportRebalance;
  /** A region report (evacuator merge): the shards it is made of; its VMs, hosts and proofs are theirs, its times from the first shard's start. */
  shards?: ReportShard[];
}

/** One shard of a region report. */
export interface ReportShard {
  /** The shard plan's name, file and digest (from its report, or from split's index when it has none). */
  name: string;
  file: string;
  digest: string;
  /** Its JSON report; null when no report of it was given (it did not run, or did not get past its refusals). */
  report: string | null;
  result: 'complete' | 'incomplete' | 'interrupted' | 'missing';
  exitCode: number | null;
  startedAt: string | null;
  endedAt: string | null;
  /** Seconds from the region's start to this shard's start. */
  offsetS: number;
  vms: number;
  moved: number;
  sourcesEmpty: number;
  sources: number;
}

export interface ReportRebalance {
  /** Ceiling per resource, a fraction of capacity x overcommit. */
  ceiling: Resources;
  freeHosts?: number;
  freed: string[];
  /** Whether every host ended under the target (judged on the fleet after the run). */
  reached: boolean;
  shortfall: string[];
  plannedBytes: number;
  plannedReached: boolean;
  hosts: { host: string; before: Resources; planned: Resources; after: Resources | null }[];
}

const SETUP_S = 1.5;
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The exit code a run deserves, decided in one place. */
export function exitCodeOf(run: Pick<RunResult, 'interrupted' | 'proofs' | 'rebalance'>): number {
  if (run.interrupted) return ExitCode.interrupted;
  if (run.rebalance) return run.rebalance.reached ? ExitCode.ok : ExitCode.incomplete;
  return run.proofs.every((p) => p.empty) ? ExitCode.ok : ExitCode.incomplete;
}

/** What a report is made of: a finished run gives it, and so does its journal (evacuator report). */
export interface ReportInput {
  plan: Blueprint['plan'];
  /** Per host, what the plan lets it hold (from the planned event). */
  limits?: Record<string, Resources>;
  driver: string;
  sources: string[];
  destinations: string[];
  warnings: string[];
  /** The fleet before the evacuation, and after it (null: the final check could not read it). */
  before: Inventory;
  after: Inventory | null;
  vms: VmResult[];
  proofs: HostProof[];
  interrupted: boolean;
  /** A rebalance: the plan's view, and the judgement on the fleet after the run. */
  rebalance?: { planned: RebalanceSummary; result?: RunResult['rebalance'] };
  /** Each planned move's estimate, seconds (null: it would not converge at full rate). */
  estimates?: Record<string, number | null>;
  /** Each planned live move's least memory sent, MiB (Move.leastMib), for the bound. */
  least?: Record<string, number>;
  /** Each planned move's fastest stream, MiB/s (Move.bestMibps), for the bound. */
  best?: Record<string, number>;
  /** On the driver's clock, ms. */
  startedAt: number;
  endedAt: number;
  wall: { start: Date; end: Date };
}

/** The report's counts of VMs by outcome, and the bytes sent: one definition for a run's report and a region's. */
export function vmTotals(vms: ReportVm[]) {
  const count = (f: (v: ReportVm) => boolean) => vms.filter(f).length;
  return {
    vms: vms.length,
    moved: count((v) => v.status === 'moved'),
    live: count((v) => v.status === 'moved' && v.method === 'live'),
    cold: count((v) => v.status === 'moved' && v.method === 'cold'),
    left: count((v) => v.status === 'left'),
    failed: count((v) => v.status === 'left' && v.attempts.some((a) => a.outcome !== 'ok')),
    unplaced: count((v) => v.status === 'unplaced'),
    pinned: count((v) => v.status === 'pinned'),
    bytes: vms.reduce((s, v) => s + v.bytes, 0),
  };
}

export function buildReport(run: ReportInput): Report {
  const t0 = run.startedAt;
  // Looked up by name for every VM: maps, not scans (a region run has thousands).
  const seenAtEnd = new Map((run.after?.vms ?? []).map((v) => [v.name, v]));
  const silentAtEnd = new Set((run.after?.unreachable ?? []).map((u) => u.host));
  const vms: ReportVm[] = [...run.vms].sort((a, b) => a.vm.localeCompare(b.vm)).map((r) => {
    const attempts = r.attempts.map((a) => ({
      method: a.method, destination: a.destination, outcome: a.outcome, detail: a.detail,
      startS: round((a.start - t0) / 1000), endS: round((a.end - t0) / 1000), durationS: round((a.end - a.start) / 1000),
      bytes: a.bytes, downtimeMs: Math.round(a.downtimeMs),
    }));
    const first = attempts[0];
    const last = attempts.at(-1);
    return {
      vm: r.vm, source: r.source, plannedDestination: r.plannedDestination, host: r.host, status: r.status, method: r.method, reason: r.reason,
      startS: first?.startS ?? null, endS: last?.endS ?? null, durationS: first && last ? round(last.endS - first.startS) : null,
      bytes: attempts.reduce((s, a) => s + a.bytes, 0),
      downtimeMs: last?.outcome === 'ok' ? last.downtimeMs : 0,
      attempts,
      ...atEnd(r.vm, r.host),
      ...(run.estimates && r.vm in run.estimates ? { estimateS: run.estimates[r.vm] } : {}),
    };
  });
  /** Where the final check saw the VM, when that is not where the run left it (a host that went down, a VM moved by someone else). */
  function atEnd(vm: string, host: string | null): { foundAtEnd?: string } {
    if (!run.after || host === null) return {};
    const seen = seenAtEnd.get(vm);
    if (seen && seen.host === host) return {};
    if (silentAtEnd.has(host)) return { foundAtEnd: '?' };
    return seen ? { foundAtEnd: seen.host } : {};
  }
  const down = new Set(run.after?.unreachable.map((u) => u.host) ?? []);
  const endWarnings = vms.filter((v) => v.foundAtEnd !== undefined).map((v) => v.foundAtEnd === '?'
    ? `${v.vm} is reported on ${v.host}, which did not answer the final check (down or cut off): where it runs now is unknown`
    : `${v.vm} was left on ${v.host} but the final check found it on ${v.foundAtEnd}`);
  // A rebalance that did not finish has no judgement: it did not reach its target.
  const judged = run.rebalance ? run.rebalance.result ?? { reached: false, shortfall: [], after: [] } : undefined;
  const code = exitCodeOf({ interrupted: run.interrupted, proofs: run.proofs, ...(judged ? { rebalance: judged } : {}) });
  return {
    version: 1,
    plan: run.plan,
    driver: run.driver,
    startedAt: run.wall.start.toISOString(),
    endedAt: run.wall.end.toISOString(),
    result: run.interrupted ? 'interrupted' : code === ExitCode.ok ? 'complete' : 'incomplete',
    exitCode: code,
    totals: {
      ...vmTotals(vms),
      makespanS: round((run.endedAt - run.startedAt) / 1000),
      lowerBoundS: round(lowerBound(vms, run.before, run.least ?? {}, run.best ?? {})),
      sourcesEmpty: run.proofs.filter((p) => p.empty).length,
      sources: run.proofs.length,
      ...estimateTotals(vms),
    },
    hosts: hostsView(run),
    vms,
    proofs: run.proofs,
    warnings: [...run.warnings, ...[...down].sort().map((h) => `${h} did not answer the final check`), ...endWarnings],
    ...(run.rebalance ? { rebalance: rebalanceView(run.rebalance.planned, run.rebalance.result) } : {}),
  };
}

/**
 * The bound from field-notes.md: no evacuation of the VMs it moved is faster than the busiest
 * source's out-link, the busiest destination's in-link (each after one migration's set-up, before
 * which no byte moves), or the longest single stream (at most its stream ceiling) with its set-up. Each VM
 * sends its local disk, and, moved live, the least memory its pre-copy can send (Move.leastMib:
 * at the best rate it can ever get, the rounds re-send what it dirties; else its memory once).
 * From what had to move, not from what this schedule sent: a schedule whose guests re-sent dirty
 * memory for want of bandwidth does not raise its own bound.
 */
function lowerBound(vms: ReportVm[], before: Inventory, least: Record<string, number>, best: Record<string, number>): number {
  const MiB = 1024 * 1024;
  const nic = new Map(before.hosts.map((h) => [h.name, nicMibpsOf(h) * MiB]));
  const was = new Map(before.vms.map((v) => [v.name, v]));
  const out = new Map<string, number>();
  const inn = new Map<string, number>();
  let longest = 0;
  for (const v of vms) {
    const ok = v.attempts.filter((a) => a.outcome === 'ok').at(-1);
    const vm = was.get(v.vm);
    if (v.status !== 'moved' || !ok || !vm) continue;
    const memory = ok.method === 'live' ? least[v.vm] ?? vm.residentMib ?? vm.resources.memory_mib ?? 0 : 0;
    const bytes = (memory + (vm.storage === 'local' ? (vm.resources.disk_gib ?? 0) * 1024 : 0)) * MiB;
    out.set(v.source, (out.get(v.source) ?? 0) + bytes);
    inn.set(ok.destination, (inn.get(ok.destination) ?? 0) + bytes);
    // One stream: no faster than the stream ceiling where the plan knew it (a move to another destination than planned: its NICs).
    const stream = ok.destination === v.plannedDestination && best[v.vm] ? best[v.vm] * MiB : Infinity;
    longest = Math.max(longest, bytes / Math.min(stream, nic.get(v.source) ?? Infinity, nic.get(ok.destination) ?? Infinity) + SETUP_S);
  }
  const busiest = (m: Map<string, number>) => Math.max(0, ...[...m].map(([h, b]) => b / (nic.get(h) ?? Infinity)));
  // No byte moves before the first migration's set-up is over.
  return Math.max(busiest(out) + SETUP_S, busiest(inn) + SETUP_S, longest);
}

function hostsView(run: ReportInput): ReportHost[] {
  const before = usedByHost(run.before.vms);
  const afterUsed = run.after ? usedByHost(run.after.vms) : null;
  const roles: [string, 'source' | 'destination'][] = [
    ...run.sources.map((h) => [h, 'source'] as [string, 'source']),
    ...run.destinations.map((h) => [h, 'destination'] as [string, 'destination']),
  ];
  return roles.flatMap(([name, role]) => {
    const host = run.before.hosts.find((h) => h.name === name);
    const limit = run.limits?.[name];
    const down = run.after?.unreachable.some((u) => u.host === name) === true;
    return host ? [{ name, role, capacity: host.capacity, ...(limit ? { limit } : {}), before: before.get(name) ?? {}, after: afterUsed && !down ? afterUsed.get(name) ?? {} : null, ...(down ? { down: true as const } : {}) }] : [];
  });
}

function rebalanceView(p: RebalanceSummary, result: RunResult['rebalance']): ReportRebalance {
  const after = new Map(result?.after.map((h) => [h.host, h.utilization]) ?? []);
  return {
    ceiling: p.ceiling,
    ...(p.freeHosts !== undefined ? { freeHosts: p.freeHosts } : {}),
    freed: p.freed,
    reached: result?.reached ?? false,
    shortfall: result ? result.shortfall : ['the run did not finish'],
    plannedBytes: p.bytes,
    plannedReached: p.reached,
    hosts: p.hosts.map((h) => ({ host: h.host, before: h.before, planned: h.after, after: after.get(h.host) ?? null })),
  };
}

/** Estimates against what the moves took: the VMs moved in one attempt that had an estimate (live or cold; each estimate is for its move's planned method); the median of actual / estimated. */
function estimateTotals(vms: ReportVm[]): { estimates?: { compared: number; medianRatio: number } } {
  const ratios = vms.filter((v) => v.status === 'moved' && v.attempts.length === 1 && typeof v.estimateS === 'number' && v.estimateS > 0)
    .map((v) => v.attempts[0].durationS / (v.estimateS as number)).sort((a, b) => a - b);
  if (ratios.length === 0) return {};
  return { estimates: { compared: ratios.length, medianRatio: round(ratios[Math.floor(ratios.length / 2)]) } };
}
