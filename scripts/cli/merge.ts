/**
 * merge: the shard runs' JSON reports into one region report (JSON and HTML, through the same
 * schema check and writer as a run's), and a step summary when $GITHUB_STEP_SUMMARY is set.
 * Refuses (exit 2) reports that are not reports, of shards that overlap, or of another split.
 */
import { ExitCode, userError } from '../errors.ts';
import { readJson } from '../files.ts';
import type { Report } from '../report/build.ts';
import { reportProblems } from '../report/schema.ts';
import { writeReports } from '../report/write.ts';
import { checkShards, mergeReports, regionDigest, type MissingShard, type ShardReport } from '../shard/merge.ts';
import { appendSummary } from './github.ts';
import { shownLines } from './shown.ts';
import type { ShardIndex } from './split.ts';

/** The schema's pattern for plan names: the region report's file name comes from it. */
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function mergeCommand(files: string[], opts: { index?: string; name?: string; reports: string }): number {
  // With the index, no report at all is a region whose shards all failed: exit 3, each listed. Without it, nothing to merge.
  if (files.length === 0 && opts.index === undefined) throw userError('merge needs the shard reports, or --index with the shards.json split wrote', [], 'evacuator merge --index shards/shards.json reports/<plan>-shard-*.json');
  const reports = files.map(readReport);
  const index = opts.index === undefined ? undefined : readIndex(opts.index);
  let missing: MissingShard[] = [];
  if (index) {
    const shards = new Map(index.shards.map((s) => [s.name, s]));
    for (const { path, report } of reports) {
      const s = shards.get(report.plan.name);
      if (!s) throw userError(`${path} is a report of plan '${report.plan.name}', which is not a shard in ${opts.index}`, [], `give only the reports of the shards ${opts.index} lists`);
      if (s.digest !== report.plan.digest) throw userError(`${path} is a report of ${report.plan.file} as it was not when split wrote it (digest ${report.plan.digest.slice(0, 19)}…, split wrote ${s.digest.slice(0, 19)}…)`, [], 'the shard plan was edited, or the report is of another split: merge the reports of the shards as split wrote them');
    }
    const have = new Set(reports.map((r) => r.report.plan.name));
    missing = index.shards.filter((s) => !have.has(s.name)).map((s) => ({ name: s.name, file: s.file, digest: s.digest, sources: s.sources }));
  }
  checkShards(reports);
  const name = opts.name ?? index?.plan.name ?? commonName(reports);
  if (!NAME.test(name)) throw userError(`'${name}' cannot name the region report: lower-case letters, digits, '.', '_' and '-', at most 63, starting with a letter or digit`);
  if (reports.some((r) => r.report.plan.name === name)) throw userError(`the region report would be named '${name}', as a shard's report: it would overwrite it`, [], 'give the region another name with --name');
  const plan = index ? { name, file: index.plan.file, digest: index.plan.digest } : { name, file: `${reports.length} shard reports`, digest: regionDigest(reports) };
  const region = mergeReports({ plan, reports, missing });
  const paths = writeReports(opts.reports, region);
  const t = region.totals;
  process.stdout.write(shownLines(`${paths.json}, ${paths.html}: region ${name}, ${reports.length} shard report(s)${missing.length ? `, ${missing.length} shard(s) without a report (${missing.map((m) => m.name).join(', ')})` : ''}: ${region.result}, ${t.moved} of ${t.vms} VMs moved (${t.live} live, ${t.cold} cold), ${t.left} left in place, ${t.unplaced} not placeable, ${t.pinned} pinned; ${t.sourcesEmpty} of ${t.sources} sources empty\n`));
  appendSummary(process.stdout, region, paths);
  return region.result === 'complete' ? ExitCode.ok : ExitCode.incomplete;
}

function readReport(path: string): ShardReport {
  const hint = "give the JSON reports the shard runs wrote (reports/<shard name>.json)";
  const report = readJson(path, 'report', hint);
  const problems = reportProblems(report);
  if (problems.length > 0) throw userError(`${path} is not an evacuator report: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`, [], hint);
  return { path, report: report as Report };
}

function readIndex(path: string): ShardIndex {
  const hint = 'give the shards.json that evacuator split wrote';
  const index = readJson(path, 'shard index', hint) as ShardIndex;
  const ok = index?.version === 1 && typeof index.plan?.name === 'string' && Array.isArray(index.shards)
    && index.shards.every((s) => typeof s?.name === 'string' && typeof s.digest === 'string' && Array.isArray(s.sources));
  if (!ok) throw userError(`${path} is not a shard index evacuator split wrote`, [], hint);
  return index;
}

/** The shards' common name: their plan names without the `-shard-NN` split gives them, when that is one name. */
function commonName(reports: ShardReport[]): string {
  const bases = [...new Set(reports.map((r) => r.report.plan.name.replace(/-shard-\d+$/, '')))];
  if (bases.length !== 1 || reports.every((r) => !/-shard-\d+$/.test(r.report.plan.name))) {
    throw userError(`the reports are of plans ${bases.slice(0, 5).join(', ')}${bases.length > 5 ? ', ...' : ''}, not of one split's shards`, [], 'give the region a name with --name, or split\'s index with --index');
  }
  return bases[0];
}
