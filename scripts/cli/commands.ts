/** The subcommands plan, run, clear, report (validate and moveback have their own modules). Each returns its exit code; errors go to one catch in the entry. */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EventSink } from '../events.ts';
import { commandLine, EvacError, ExitCode, messageOf } from '../errors.ts';
import type { Driver } from '../fleet/driver.ts';
import { openDriver, type OpenOptions } from '../fleet/open.ts';
import { describeFence } from '../fleet/types.ts';
import { loadPlan, type LoadedPlan } from '../plan/load.ts';
import type { Blueprint } from '../preflight/blueprint.ts';
import { loadBlueprint, saveBlueprint } from '../preflight/saved.ts';
import { buildReport } from '../report/build.ts';
import { reportFromJournal } from '../report/replay.ts';
import { writeReports } from '../report/write.ts';
import { evacuate, guardLimits, preview } from '../runner/evacuate.ts';
import { guardDriver } from '../fleet/guard.ts';
import { settingsOf } from '../plan/settings.ts';
import { chainOf, journalPath, readJournal, stillRunning } from '../runner/journal.ts';
import { interrupts } from '../process.ts';
import { readRollJournal, rollJournalPath, rollReport, rollState } from '../rolling/roll.ts';
import { writeRollReports } from '../rolling/report.ts';
import { consoleOptions, consoleSink, eventStream, paint } from './console.ts';
import { shownDeep, shownLines } from './shown.ts';
import { finishInActions, groupSink, inActions } from './github.ts';

/** Open the plan's driver, guarded, and always close it (open SSH connections would keep the process alive). */
export async function withDriver<T>(loaded: LoadedPlan, opts: OpenOptions, body: (driver: Driver) => Promise<T>): Promise<T> {
  const driver = guardDriver(await openDriver(loaded.plan, opts), guardLimits(settingsOf(loaded.plan)));
  try {
    return await body(driver);
  } finally {
    await driver.close();
  }
}

export async function planCommand(file: string, opts: { json?: boolean; out?: string }): Promise<number> {
  const log = consoleSink({ ...consoleOptions(process.stderr), live: false });
  const loaded = loadPlan(file);
  if (loaded.plan.kind === 'rolling') return (await import('./roll.ts')).rollPlanCommand(loaded, opts);
  const { bp, snap } = await withDriver(loaded, { readOnly: true }, (driver) => preview(loaded, driver, opts.json ? () => {} : log));
  if (opts.out) saveBlueprint(opts.out, bp, snap);
  if (opts.json) process.stdout.write(`${JSON.stringify(bp, null, 2)}\n`);
  else process.stdout.write(describeBlueprint(shownDeep(bp), paint(consoleOptions(process.stdout).color)));
  if (opts.out) process.stderr.write(shownLines(`blueprint saved to ${opts.out}; run exactly it with: ${commandLine('evacuator', 'run', file, '--blueprint', opts.out)}\n`));
  if (bp.rebalance) return bp.rebalance.reached ? ExitCode.ok : ExitCode.incomplete;
  return bp.unplaced.length === 0 ? ExitCode.ok : ExitCode.incomplete;
}

export function describeBlueprint(bp: Blueprint, c: ReturnType<typeof paint>): string {
  if (bp.rebalance) return describeRebalance(bp, c);
  const bound = bp.receivingLowerBound === undefined ? '' : bp.receivingLowerBound >= bp.destinationsUsed ? '; proven fewest: the lower bound' : `; lower bound ${bp.receivingLowerBound}`;
  const lines = [c.bold(`Plan ${bp.plan.name}: ${bp.moves.length} moves onto ${bp.destinationsUsed} of ${bp.destinations.length} destination hosts (policy ${bp.policy}${bound})`)];
  for (const m of bp.moves) {
    const est = m.estimateS === null ? c.yellow('will not converge live at full rate') : `~${m.estimateS} s`;
    lines.push(`  ${m.vm.padEnd(18)} ${m.source} → ${m.destination.padEnd(10)} ${m.method.padEnd(5)} ${est}`);
  }
  for (const p of bp.pinned) lines.push(`  ${p.vm.padEnd(18)} ${c.dim(`pinned on ${p.host}`)}`);
  if (bp.mostPlacedProven) lines.push(c.yellow('  No placement moves more of these VMs (proven by the placement\'s integer program): the destinations lack room, not a better packing.'));
  for (const u of bp.unplaced) {
    lines.push(`  ${u.vm.padEnd(18)} ${c.red('cannot move')} from ${u.source}:`);
    for (const r of u.reasons) lines.push(`      - ${r.text}`);
  }
  // A VM the preflight turned away is listed above as cannot move: then not every move passed.
  const turnedAway = bp.unplaced.filter((u) => u.reasons.some((r) => r.text.startsWith('preflight'))).length;
  lines.push(bp.preflight.ok && turnedAway === 0
    ? c.green(bp.moves.length > 0 ? 'Preflight: every move passed.' : 'Preflight: no move to check.')
    : c.yellow(`Preflight: ${turnedAway || 'some'} move(s) failed their checks (see above); the others passed.`));
  return `${lines.join('\n')}\n`;
}

const GiB = 2 ** 30;
const pct = (x: number | undefined) => `${((x ?? 0) * 100).toFixed(0)}%`.padStart(4);

/** A rebalance: the target, the moves with their bytes, each host's utilization before and after. */
function describeRebalance(bp: Blueprint, c: ReturnType<typeof paint>): string {
  const r = bp.rebalance!;
  const target = [
    ...Object.entries(r.ceiling).map(([k, v]) => `${k} at most ${pct(v).trim()}`),
    ...(r.freeHosts ? [`free ${r.freeHosts} host(s)${r.freed.length ? `: ${r.freed.join(', ')}` : ''}`] : []),
  ].join(', ');
  const lines = [c.bold(`Rebalance ${bp.plan.name}: ${target}. ${bp.moves.length} moves, ${(r.bytes / GiB).toFixed(1)} GiB to move.`)];
  for (const m of bp.moves) lines.push(`  ${m.vm.padEnd(18)} ${m.source} → ${m.destination.padEnd(10)} ${m.method.padEnd(5)} ${m.estimateS === null ? c.yellow('will not converge live') : `~${m.estimateS} s`}`);
  const dims = Object.keys(r.ceiling).length ? Object.keys(r.ceiling) : ['memory_mib'];
  lines.push('', `  ${'host'.padEnd(12)} ${dims.map((k) => `${k} before → after`.padEnd(26)).join('')}`);
  for (const h of r.hosts) lines.push(`  ${h.host.padEnd(12)} ${dims.map((k) => `${pct(h.before[k])} → ${pct(h.after[k])}`.padEnd(26)).join('')}`);
  for (const u of bp.unplaced) lines.push(`  ${u.vm.padEnd(18)} ${c.red('cannot move')}: ${u.reasons.map((x) => x.text).join('; ')}`);
  lines.push(r.reached ? c.green('The moves reach the target.') : c.yellow(`The target is not reached:\n${r.shortfall.map((x) => `  - ${x}`).join('\n')}`));
  return `${lines.join('\n')}\n`;
}

export interface RunOptions {
  reports: string;
  /** Continue the last run of this plan from its journal. */
  resume?: boolean;
  /** With resume: although the plan changed since that run began. */
  acceptChangedPlan?: boolean;
  /** Also write every event as a JSON line here ('-' for stdout). */
  events?: string;
  /** Execute exactly this saved blueprint (evacuator plan --out). */
  blueprint?: string;
}

/** run: the evacuation with the terminal, CI and --events wired to its event stream, signals to its abort signals. */
export async function runCommand(file: string, opts: RunOptions): Promise<number> {
  const loaded = loadPlan(file);
  if (loaded.plan.kind === 'rolling') return (await import('./roll.ts')).rollRunCommand(loaded, opts);
  const blueprint = opts.blueprint ? { saved: loadBlueprint(opts.blueprint, loaded), file: opts.blueprint } : undefined;
  // With the events on stdout, the lines for people go to stderr, so stdout stays JSON lines.
  const out = opts.events === '-' ? process.stderr : process.stdout;
  const sink = consoleSink(consoleOptions(out));
  const stream = opts.events ? eventStream(opts.events) : undefined;
  const groups = inActions() ? groupSink(out) : undefined;
  const emit: EventSink = (e) => {
    stream?.(e);
    groups?.(e);
    sink(e);
  };
  const { stop, halt, release } = interrupts((message) => emit({ kind: 'warning', t: 0, message }), {
    first: 'starting no new migrations; waiting for those in flight, then writing reports',
    second: 'cancelling live migrations in flight (their guests stay on their sources); a cold migration already copying finishes, so no VM is left half-moved',
    later: 'still waiting for the cancelled migrations to end',
  });
  try {
    const done = await evacuate(loaded, async (o) => openDriver(loaded.plan, o), emit, {
      reportsDir: opts.reports, ...(opts.resume ? { resume: true } : {}), ...(opts.acceptChangedPlan ? { acceptChangedPlan: true } : {}), ...(blueprint ? { blueprint } : {}), stop, halt,
    });
    sink.close();
    const report = done.report;
    const t = report.totals;
    const col = paint(consoleOptions(out).color);
    const rb = report.rebalance;
    out.write(rb
      ? `\n${col.bold(shownLines(`${t.moved} of ${t.vms} planned moves done (${(t.bytes / GiB).toFixed(1)} GiB sent); target ${rb.reached ? 'reached on every host' : `not reached: ${rb.shortfall.join('; ')}`}.`))}\n`
      : `\n${col.bold(`${t.moved} of ${t.vms} VMs moved (${t.live} live, ${t.cold} cold), ${t.left} left in place, ${t.unplaced} not placeable, ${t.pinned} pinned; ${t.sourcesEmpty} of ${t.sources} sources empty.`)}\n`);
    out.write(shownLines(`Makespan ${t.makespanS} s (lower bound ${t.lowerBoundS} s)${t.estimates ? `; moves took ${t.estimates.medianRatio.toFixed(2)}x their estimate (median of ${t.estimates.compared})` : ''}. Reports: ${done.paths.json}, ${done.paths.html}\n`));
    if (groups) {
      groups.close();
      finishInActions(out, report, { json: done.paths.json!, html: done.paths.html! });
    }
    if (!loaded.plan.vms && !rb) out.write(shownLines(`${done.blueprint.sources.join(', ')} stay fenced for the maintenance; afterwards: ${commandLine('evacuator', 'clear', file, ...(opts.reports === 'reports' ? [] : ['--reports', opts.reports]))}\n`));
    return done.exitCode;
  } finally {
    release();
  }
}

/** Rebuild the JSON and HTML reports from a journal (also of a run that was killed). */
export function reportCommand(journalFile: string, opts: { reports?: string }): number {
  if (!existsSync(journalFile)) throw new EvacError(`no journal at ${journalFile}`, 'user', [], 'give the journal a run wrote: reports/<plan name>.journal.jsonl');
  if (journalFile.endsWith('.roll.jsonl')) return rollReportCommand(journalFile, opts);
  const lines = readJournal(journalFile);
  const report = buildReport(reportFromJournal(lines, journalFile));
  let paths: { json: string; html: string };
  try {
    paths = writeReports(opts.reports ?? dirname(journalFile), report);
  } catch (e) {
    // A journal whose lines are valid JSON but not what a run writes gives a report its schema refuses: bad input.
    if (e instanceof EvacError) throw e;
    throw new EvacError(`${journalFile} is damaged: ${messageOf(e)}`, 'user', [], 'give the journal a run wrote, unedited: reports/<plan name>.journal.jsonl');
  }
  process.stdout.write(shownLines(`${paths.json}, ${paths.html}: ${report.result}, ${report.totals.moved} of ${report.totals.vms} VMs moved, ${report.totals.sourcesEmpty} of ${report.totals.sources} sources empty\n`));
  return ExitCode.ok;
}

/** A roll's report rebuilt from its journal (also of a roll that was killed). */
function rollReportCommand(journalFile: string, opts: { reports?: string }): number {
  const lines = readRollJournal(journalFile);
  const start = lines.find((l) => l.kind === 'roll-start');
  if (!start || start.kind !== 'roll-start') throw new EvacError(`${journalFile} holds no roll`, 'user', [], 'give the journal a roll wrote: reports/<plan name>.roll.jsonl');
  let paths: { json: string; html: string };
  let report: ReturnType<typeof rollReport>;
  try {
    report = rollReport(lines, { file: start.plan.file, digest: start.plan.digest, plan: { name: start.plan.name } }, start.driver ?? 'unknown');
    paths = writeRollReports(opts.reports ?? dirname(journalFile), report);
  } catch (e) {
    // Lines that are JSON but not what a roll writes: bad input, as for a run's journal.
    throw new EvacError(`${journalFile} is damaged: ${messageOf(e)}`, 'user', [], 'give the journal a roll wrote, unedited: reports/<plan name>.roll.jsonl');
  }
  process.stdout.write(shownLines(`${paths.json}, ${paths.html}: ${report.result}, ${report.totals.maintained} of ${report.totals.hosts} hosts maintained, ${report.totals.migrations} migrations\n`));
  return ExitCode.ok;
}

/** Lift the fences this plan's runs left on the fleet (with force, anyone's). */
export async function clearCommand(file: string, opts: { reports: string; force?: boolean }): Promise<number> {
  const loaded = loadPlan(file);
  const name = loaded.plan.name;
  const last = chainOf(readJournal(journalPath(opts.reports, name)))?.runs.at(-1);
  if (last && stillRunning(last)) throw new EvacError(`run ${last.run} of plan '${name}' is still running (pid ${last.pid})`, 'held', [], 'let it finish (or interrupt it) before lifting its fences');
  const say = (text: string) => process.stdout.write(shownLines(text));
  return withDriver(loaded, { reportsDir: opts.reports, resume: true }, async (driver) => {
    const got = await driver.inventory();
    if (!got.ok) throw new EvacError(`cannot read the fleet: ${got.detail}`, 'fleet', [], 'check that the hosts answer, then run again');
    // A fence whose run is still alive (this controller, same pid and process start) is never lifted, even with --force.
    const alive = got.inventory.hosts.filter((h) => h.fence && h.fence.plan !== name && opts.force && stillRunning({ ...h.fence, ended: false }));
    const fenced = got.inventory.hosts.filter((h) => h.fence && (h.fence.plan === name || opts.force) && !alive.includes(h));
    const others = got.inventory.hosts.filter((h) => h.fence && h.fence.plan !== name && !opts.force);
    for (const h of alive) say(`${h.name}: left as it is: ${describeFence(h.fence!)} is still running (pid ${h.fence!.pid}); stop that run first\n`);
    for (const h of fenced) {
      const r = await driver.fence(h.name, null, true);
      say(r.ok ? `${h.name}: lifted the fence of ${describeFence(h.fence!)}\n` : `${h.name}: could not lift its fence: ${r.detail}\n`);
    }
    for (const h of others) say(`${h.name}: left as it is, fenced by ${describeFence(h.fence!)} (--force lifts it)\n`);
    if (fenced.length === 0) say(`no host is fenced by plan '${name}'\n`);
    for (const u of got.inventory.unreachable) say(`${u.host}: did not answer (${u.detail}); its fence, if any, is still there\n`);
    // A roll that stopped with pinned VMs it shut down: those still off are named (lifting the fence does not start them).
    if (loaded.plan.kind === 'rolling') {
      const off = [...rollState(readRollJournal(rollJournalPath(opts.reports, name))).pinnedDown]
        .map(([h, vms]) => [h, vms.filter((v) => got.inventory.vms.some((x) => x.name === v && x.host === h && x.state === 'shutoff'))] as const)
        .filter(([, vms]) => vms.length > 0);
      for (const [h, vms] of off) say(`${h}: pinned VMs the roll shut down are still SHUT OFF: ${vms.join(', ')}; resume the roll (run --resume) or start them on ${h} once it is healthy\n`);
    }
    return got.inventory.unreachable.length > 0 ? ExitCode.fleet : alive.length > 0 ? ExitCode.held : ExitCode.ok;
  });
}
