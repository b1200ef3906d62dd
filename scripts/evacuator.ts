#!/usr/bin/env node
/**
 * evacuator: empty hypervisor hosts before maintenance. The entry: parse the command line, catch once.
 * Each command's module is imported inside its action, so `--help`, `--version` and `validate`
 * load only what they use (no driver, no runner, no report).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import type { RunOptions } from './cli/commands.ts';
import { EvacError, ExitCode, formatProblem } from './errors.ts';
import { shown, shownLines } from './cli/shown.ts';
import { endOnSignal } from './process.ts';

// package.json is one level up from both scripts/evacuator.ts and the compiled dist/evacuator.js.
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

endOnSignal();

// Output errors (a reader that went away: \`| head\`) never end a run; the journal and the reports have it all.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

const program = new Command('evacuator')
  .description('Empty hypervisor hosts before maintenance: plan, place, migrate, report.')
  .version(version, '-V, --version', 'print the version')
  .exitOverride()
  .showHelpAfterError('(run with --help for usage)')
  .addHelpText('after', `
Exit codes:
  0    every VM moved; every source host is empty
  1    internal error (a bug; please report it)
  2    bad input: invalid plan, unknown host or VM, bad arguments (nothing touched)
  3    some VMs were left in place or cannot be placed (each reported with its reason);
       a rolling plan: some hosts were not maintained, or the roll cannot hold as planned
  4    the fleet could not be reached or read (nothing touched)
  5    another run holds these hosts, or this plan's last run must be resumed (nothing touched)
  130  interrupted (SIGINT/SIGTERM); reports written for what happened`);

let code: number = ExitCode.ok;
program.command('validate').argument('<plan>', 'plan file (YAML)')
  .description('check a plan against the schema and the rules; contacts no host')
  .action(async (plan: string) => { code = await (await import('./cli/validate.ts')).validateCommand(plan); });
program.command('plan').argument('<plan>', 'plan file (YAML)')
  .description('discover the fleet, place every VM and run the read-only preflight; changes nothing')
  .option('--json', 'print the placement and preflight as JSON on stdout (shape in README.md)')
  .option('--out <file>', 'also save the blueprint, for `run --blueprint` to execute exactly')
  .action(async (plan: string, opts: { json?: boolean; out?: string }) => { code = await (await import('./cli/commands.ts')).planCommand(plan, opts); });
program.command('run').argument('<plan>', 'plan file (YAML)')
  .description('evacuate: migrate every placeable VM, then prove the source hosts empty')
  .option('--reports <dir>', 'where to write <plan name>.json, .html and the journal', 'reports')
  .option('--resume', 'continue the last run of this plan from its journal, settling the migrations it had in flight')
  .option('--accept-changed-plan', 'with --resume: continue although the plan file changed since that run began (the report says so)')
  .option('--events <file>', "also write every event as a JSON line to this file ('-' for stdout)")
  .option('--blueprint <file>', 'execute exactly this saved blueprint (plan --out); refused if the plan or the fleet changed so that a move no longer holds')
  .action(async (plan: string, opts: RunOptions) => { code = await (await import('./cli/commands.ts')).runCommand(plan, opts); });
program.command('clear').argument('<plan>', 'plan file (YAML)')
  .description("lift the fences this plan's runs left on its hosts, once the maintenance is over")
  .option('--reports <dir>', 'where the plan\'s journal is', 'reports')
  .option('--force', "also lift fences other plans left (for a run that died and will not be resumed)")
  .action(async (plan: string, opts: { reports: string; force?: boolean }) => { code = await (await import('./cli/commands.ts')).clearCommand(plan, opts); });

program.command('report').argument('<journal>', "a run's journal (reports/<plan name>.journal.jsonl)")
  .description('rebuild the JSON and HTML reports from a journal, also of a run that was killed')
  .option('--reports <dir>', 'where to write them (default: beside the journal)')
  .action(async (journal: string, opts: { reports?: string }) => { code = (await import('./cli/commands.ts')).reportCommand(journal, opts); });
program.command('moveback').argument('<report>', "a run's JSON report (reports/<plan name>.json)")
  .description('write a plan that returns the VMs a run moved to their original hosts, for after the maintenance')
  .option('-o, --output <file>', 'where to write the plan (default: <plan name>-moveback.yaml beside the report)')
  .action(async (report: string, opts: { output?: string }) => { code = (await import('./cli/moveback.ts')).movebackCommand(report, opts); });
program.command('split').argument('<plan>', 'plan file (YAML)')
  .description('cut the plan into shard plans with disjoint sources and disjoint destination pools; reads the fleet, changes nothing')
  .option('--by <label>', 'one shard per value of this host label of the sources (a failure domain, e.g. rack)')
  .option('--shards <n>', 'this many shards, balanced by the memory their sources must move')
  .option('--out <dir>', 'where to write the shard plans and their index (shards.json)', 'shards')
  .action(async (plan: string, opts: { by?: string; shards?: string; out: string }) => { code = await (await import('./cli/split.ts')).splitCommand(plan, opts); });
program.command('merge').argument('[reports...]', "the shards' JSON reports (reports/<shard name>.json)")
  .description("merge shard reports into one region report (JSON and HTML), and a step summary in GitHub Actions")
  .option('--index <file>', "split's index (shards.json): every report must be of one of its shards, and a shard without a report is counted as not done")
  .option('--name <name>', 'the region report\'s name (default: the plan split, or the shards\' common name)')
  .option('--reports <dir>', 'where to write <name>.json and .html', 'reports')
  .action(async (reports: string[], opts: { index?: string; name?: string; reports: string }) => { code = (await import('./cli/merge.ts')).mergeCommand(reports, opts); });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  code = report(e);
}
process.exitCode = code;

function report(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? ExitCode.ok : ExitCode.badInput;
  if (e instanceof EvacError) {
    // Each on one line: a line feed from a plan key or value is shown, never a new line of its own.
    process.stderr.write(`evacuator: ${shown(e.message)}\n`);
    for (const p of e.problems) process.stderr.write(`  ${shown(formatProblem(p))}\n`);
    if (e.hint) process.stderr.write(`  → ${shown(e.hint)}\n`);
    return e.exitCode;
  }
  process.stderr.write(shownLines(`evacuator: internal error: ${e instanceof Error ? e.stack : String(e)}\n`));
  return ExitCode.internal;
}
