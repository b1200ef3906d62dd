/**
 * moveback: from a finished run's report, a plan that returns each moved VM to the host it came
 * from, once the maintenance is over. Same fleet and migration settings as the original plan;
 * only the moved VMs (`vms`), each assigned to its original host (`placement.assign`).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { commandLine, userError } from '../errors.ts';
import { readJson } from '../files.ts';
import { simStatePath } from '../fleet/open.ts';
import { loadPlan } from '../plan/load.ts';
import { exactPattern } from '../plan/settings.ts';
import type { EvacuationPlan } from '../plan/plan-types.ts';
import type { Report } from '../report/build.ts';
import { shownLines } from './shown.ts';

export function movebackCommand(reportFile: string, opts: { output?: string }): number {
  const hint = 'give the JSON report a run wrote (reports/<plan name>.json)';
  const report = readJson(reportFile, 'report', hint) as Report;
  if ((report as unknown as { kind?: string }).kind === 'rolling') {
    throw userError(`${reportFile} is a rolling maintenance's report: its VMs moved wave by wave onto hosts already maintained`, [], 'to have each host get its own VMs back, run the roll with rolling.return: origin');
  }
  if (Array.isArray(report.shards)) {
    throw userError(`${reportFile} is a region report merged from ${report.shards.length} shard report(s): their VMs moved under the shards' own plans and fleets`, [], 'run moveback on each shard\'s report (reports/<shard name>.json), and run the plans it writes as the shards ran');
  }
  if (!report.vms || !report.plan?.file) throw userError(`${reportFile} is not an evacuator report`, [], 'give the JSON report a run wrote (reports/<plan name>.json)');
  const moved = report.vms.filter((v) => v.status === 'moved' && v.host && v.host !== v.source);
  if (moved.length === 0) throw userError(`no VM of plan '${report.plan.name}' moved in that run: nothing to move back`);
  if (!existsSync(report.plan.file)) throw userError(`the original plan ${report.plan.file} is gone`, [], 'run moveback where the plan file is (the report names it by its path)');
  const original = loadPlan(report.plan.file).plan;
  const reportsDir = dirname(reportFile);
  // The evacuation's journal and fences live in its reports folder: the commands name it unless it is the default.
  const reportsArgs = reportsDir === 'reports' ? [] : ['--reports', reportsDir];
  const fleet = structuredClone(original.fleet);
  // The simulated fleet of the evacuation: its state file, so the moveback starts from where the VMs are now.
  if (fleet.driver === 'sim') fleet.sim = { ...fleet.sim, state_file: simStatePath(original, reportsDir) };
  const { pinned: _pinned, assign: _assign, ...placement } = original.placement ?? {};
  const { window_end: _window, ...migration } = original.migration ?? {};
  const plan: EvacuationPlan = {
    version: 1,
    name: `${original.name}-moveback`,
    fleet,
    sources: nonEmpty([...new Set(moved.map((v) => v.host!))].sort()),
    destinations: { hosts: nonEmpty([...new Set(moved.map((v) => v.source))].sort()) },
    // Exact names, not patterns: a VM named glob-* must not pull in others.
    vms: nonEmpty(moved.map((v) => exactPattern(v.vm))),
    placement: { ...placement, assign: Object.fromEntries(moved.map((v) => [v.vm, v.source])) },
    migration,
  };
  const out = opts.output ?? join(reportsDir, `${plan.name}.yaml`);
  const header = `# Written by evacuator moveback from ${reportFile} (plan ${report.plan.name}, run ended ${report.endedAt}).
# Returns ${moved.length} VM(s) to the hosts they left. Lift the maintenance fences first:
#   ${commandLine('evacuator', 'clear', report.plan.file, ...reportsArgs)}
`;
  writeFileSync(out, header + stringify(parse(JSON.stringify(plan))));
  // The plan must load like any other; a bad one is an internal error, not the user's.
  loadPlan(out);
  process.stdout.write(shownLines(`${out}: moves ${moved.length} VM(s) back to ${plan.destinations!.hosts!.join(', ')}\n`));
  process.stdout.write(shownLines(`after the maintenance: ${commandLine('evacuator', 'clear', report.plan.file, ...reportsArgs)} && ${commandLine('evacuator', 'run', out, ...reportsArgs)}\n`));
  return 0;
}

const nonEmpty = (xs: string[]) => xs as [string, ...string[]];
