/**
 * A region report from shard reports: one Report whose VMs, hosts and proofs are the union of the
 * shards' (which must not share a VM or a host), whose totals are their sums, and whose times run
 * from the first shard's start (each shard's shifted by when it began). Pure: reports in, report out.
 */
import { createHash } from 'node:crypto';
import { userError } from '../errors.ts';
import { exitCodeOf, vmTotals, type Report, type ReportShard, type ReportVm } from '../report/build.ts';
import type { HostProof } from '../model.ts';

/** A shard report and where it was read from. */
export interface ShardReport {
  path: string;
  report: Report;
}

/** A shard split made that has no report: its sources count as not proven empty. */
export interface MissingShard {
  name: string;
  file: string;
  digest: string;
  sources: string[];
}

export interface Region {
  /** The region report's plan: the plan that was split (from the index), or a name given. */
  plan: Report['plan'];
  reports: ShardReport[];
  missing: MissingShard[];
}

const round = (x: number) => Math.round(x * 10) / 10;

/** Refuse what cannot be one region: a report given twice, a region report, a rebalance, other drivers, a VM or host in two shards. */
export function checkShards(reports: ShardReport[]): void {
  const byName = new Map<string, string>();
  for (const { path, report } of reports) {
    if (report.shards) throw userError(`${path} is a region report (made by merge), not a shard's`, [], 'give the reports the shard runs wrote');
    if (report.rebalance) throw userError(`${path} is a rebalance's report; only evacuations are split and merged`);
    const other = byName.get(report.plan.name);
    if (other !== undefined) throw userError(`${other} and ${path} are both reports of plan '${report.plan.name}'`, [], 'give each shard\'s report once');
    byName.set(report.plan.name, path);
  }
  const drivers = [...new Set(reports.map((r) => r.report.driver))];
  if (drivers.length > 1) throw userError(`the reports come from different drivers (${drivers.join(', ')}): they are not shards of one fleet`);
  const seen = (what: string) => {
    const owner = new Map<string, string>();
    return (name: string, shard: string) => {
      const first = owner.get(name);
      if (first !== undefined && first !== shard) throw userError(`${what} ${name} is in two shards' reports: '${first}' and '${shard}'`, [], 'the shards overlap: merge only reports of shards split from one plan (evacuator split), each run once');
      owner.set(name, shard);
    };
  };
  const vm = seen('VM');
  const host = seen('host');
  for (const { report } of reports) {
    for (const v of report.vms) vm(v.vm, report.plan.name);
    for (const h of report.hosts) host(h.name, report.plan.name);
  }
}

/** The region report. Call checkShards first. */
export function mergeReports(region: Region): Report {
  const reports = [...region.reports].sort((a, b) => Date.parse(a.report.startedAt) - Date.parse(b.report.startedAt) || (a.report.plan.name < b.report.plan.name ? -1 : 1));
  // No report at all is a region whose every shard is missing (the index says which): reported so, not refused.
  if (reports.length === 0 && region.missing.length === 0) throw userError('no shard report to merge', [], 'give the shards\' JSON reports, or --index with the shards.json split wrote');
  const now = Date.now();
  const start = reports.reduce((m, r) => Math.min(m, Date.parse(r.report.startedAt)), reports.length ? Infinity : now);
  const end = reports.reduce((m, r) => Math.max(m, Date.parse(r.report.endedAt)), reports.length ? -Infinity : now);
  const offsetOf = (r: Report) => round((Date.parse(r.startedAt) - start) / 1000);
  const vms: ReportVm[] = reports.flatMap(({ report }) => {
    const dt = offsetOf(report);
    const at = (s: number | null) => (s === null ? null : round(s + dt));
    return report.vms.map((v) => ({ ...v, startS: at(v.startS), endS: at(v.endS), attempts: v.attempts.map((a) => ({ ...a, startS: round(a.startS + dt), endS: round(a.endS + dt) })) }));
  }).sort((a, b) => a.vm.localeCompare(b.vm));
  const missingProofs: HostProof[] = region.missing.flatMap((m) => m.sources.map((host) => ({
    host, empty: false, left: [{ vm: '?', state: 'unknown', why: `shard '${m.name}' has no report: it did not run, or did not get past its refusals` }],
  })));
  const proofs = [...reports.flatMap((r) => r.report.proofs), ...missingProofs];
  const interrupted = reports.some((r) => r.report.result === 'interrupted');
  const code = exitCodeOf({ interrupted, proofs });
  const shards: ReportShard[] = [
    ...reports.map(({ path, report: r }) => ({
      name: r.plan.name, file: r.plan.file, digest: r.plan.digest, report: path, result: r.result, exitCode: r.exitCode, startedAt: r.startedAt, endedAt: r.endedAt,
      offsetS: offsetOf(r), vms: r.totals.vms, moved: r.totals.moved, sourcesEmpty: r.totals.sourcesEmpty, sources: r.totals.sources,
    })),
    ...region.missing.map((m) => ({
      name: m.name, file: m.file, digest: m.digest, report: null, result: 'missing' as const, exitCode: null, startedAt: null, endedAt: null,
      offsetS: 0, vms: 0, moved: 0, sourcesEmpty: 0, sources: m.sources.length,
    })),
  ];
  return {
    version: 1,
    plan: region.plan,
    driver: reports[0]?.report.driver ?? 'unknown (no shard report)',
    startedAt: new Date(start).toISOString(),
    endedAt: new Date(end).toISOString(),
    result: interrupted ? 'interrupted' : code === 0 && region.missing.length === 0 ? 'complete' : 'incomplete',
    exitCode: code,
    totals: {
      ...vmTotals(vms),
      // The shards run on disjoint hosts: the region ends when its last shard does, and no link is shared, so its bound is theirs.
      makespanS: round(reports.reduce((m, { report: r }) => Math.max(m, offsetOf(r) + r.totals.makespanS), 0)),
      lowerBoundS: reports.reduce((m, r) => Math.max(m, r.report.totals.lowerBoundS), 0),
      sourcesEmpty: proofs.filter((p) => p.empty).length,
      sources: proofs.length,
    },
    hosts: reports.flatMap((r) => r.report.hosts),
    vms,
    proofs,
    warnings: [
      ...region.missing.map((m) => `shard '${m.name}' (${m.file}) has no report: its ${m.sources.length} source(s) are not proven empty`),
      ...reports.flatMap(({ report: r }) => r.warnings.map((w) => `${r.plan.name}: ${w}`)),
    ],
    shards,
  };
}

/** A digest for a region merged without an index: of its shards' digests, in name order. */
export function regionDigest(reports: ShardReport[]): string {
  const digests = reports.map((r) => `${r.report.plan.name} ${r.report.plan.digest}`).sort().join('\n');
  return `sha256:${createHash('sha256').update(digests).digest('hex')}`;
}
