/** The subcommands: validate, plan, run. Each returns its exit code; errors go to one catch in the entry. */
import type { EvacEvent, EventSink } from '../events.ts';
import { ExitCode, formatProblem } from '../errors.ts';
import { discover } from '../fleet/discover.ts';
import { openDriver } from '../fleet/open.ts';
import { loadPlan } from '../plan/load.ts';
import { settingsOf } from '../plan/settings.ts';
import { makeBlueprint, type Blueprint } from '../preflight/blueprint.ts';
import { buildReport, exitCodeOf } from '../report/build.ts';
import { writeReports } from '../report/write.ts';
import { runBlueprint } from '../runner/run.ts';
import { consoleOptions, consoleSink, paint } from './console.ts';

export async function validateCommand(file: string): Promise<number> {
  const loaded = loadPlan(file);
  for (const w of loaded.warnings) process.stderr.write(`warning: ${formatProblem(w)}\n`);
  process.stdout.write(`${file}: valid plan '${loaded.plan.name}' (${loaded.plan.sources.length} source host(s), driver ${loaded.plan.fleet.driver})\n`);
  return ExitCode.ok;
}

/** Discover, place and preflight: what `run` would do, changing nothing. */
async function prepare(file: string, emit: EventSink) {
  const loaded = loadPlan(file);
  const settings = settingsOf(loaded.plan);
  const driver = openDriver(loaded.plan);
  try {
    emit({ kind: 'stage', t: driver.clock.now(), stage: 'discover', detail: `driver ${driver.name}` });
    const snap = await discover(driver, loaded.plan);
    for (const w of snap.warnings) emit({ kind: 'warning', t: driver.clock.now(), message: w });
    emit({ kind: 'stage', t: driver.clock.now(), stage: 'place', detail: `${snap.onSources.length} VMs on ${snap.sources.length} source(s), ${snap.destinations.length} destination(s), policy ${settings.policy}` });
    const bp = await makeBlueprint(loaded, settings, snap, driver);
    emit({ kind: 'stage', t: driver.clock.now(), stage: 'preflight', detail: `${bp.moves.length} moves cleared, ${bp.unplaced.length} VM(s) cannot move` });
    return { loaded, settings, driver, snap, bp };
  } catch (e) {
    // Open SSH connections would keep the process alive after the error.
    await driver.close();
    throw e;
  }
}

export async function planCommand(file: string, opts: { json?: boolean }): Promise<number> {
  const log = consoleSink({ ...consoleOptions(process.stderr), live: false });
  const { bp, driver } = await prepare(file, opts.json ? () => {} : log);
  await driver.close();
  if (opts.json) process.stdout.write(`${JSON.stringify(bp, null, 2)}\n`);
  else process.stdout.write(describeBlueprint(bp, paint(consoleOptions(process.stdout).color)));
  return bp.unplaced.length === 0 ? ExitCode.ok : ExitCode.incomplete;
}

function describeBlueprint(bp: Blueprint, c: ReturnType<typeof paint>): string {
  const lines = [c.bold(`Plan ${bp.plan.name}: ${bp.moves.length} moves onto ${bp.destinationsUsed} of ${bp.destinations.length} destination hosts (policy ${bp.policy})`)];
  for (const m of bp.moves) {
    const est = m.estimateS === null ? c.yellow('will not converge live at full rate') : `~${m.estimateS} s`;
    lines.push(`  ${m.vm.padEnd(18)} ${m.source} → ${m.destination.padEnd(10)} ${m.method.padEnd(5)} ${est}`);
  }
  for (const p of bp.pinned) lines.push(`  ${p.vm.padEnd(18)} ${c.dim(`pinned on ${p.host}`)}`);
  for (const u of bp.unplaced) {
    lines.push(`  ${u.vm.padEnd(18)} ${c.red('cannot move')} from ${u.source}:`);
    for (const r of u.reasons) lines.push(`      - ${r.text}`);
  }
  lines.push(bp.preflight.ok ? c.green('Preflight: every move passed.') : c.yellow('Preflight: some checks failed (see above).'));
  return `${lines.join('\n')}\n`;
}

export async function runCommand(file: string, opts: { reports: string }): Promise<number> {
  const sink = consoleSink(consoleOptions(process.stdout));
  const events: EvacEvent[] = [];
  const emit: EventSink = (e) => {
    if (e.kind !== 'progress') events.push(e);
    sink(e);
  };
  const start = new Date();
  const { bp, snap, settings, driver } = await prepare(file, emit);
  const stop = new AbortController();
  const halt = new AbortController();
  let signals = 0;
  const onSignal = (name: string) => {
    signals++;
    if (signals === 1) {
      emit({ kind: 'warning', t: driver.clock.now(), message: `${name}: starting no new migrations; waiting for those in flight, then writing reports` });
      stop.abort();
    } else if (signals === 2) {
      emit({ kind: 'warning', t: driver.clock.now(), message: `${name} again: cancelling live migrations in flight (their guests stay on their sources); a cold migration already copying finishes, so no VM is left half-moved` });
      halt.abort();
    } else {
      emit({ kind: 'warning', t: driver.clock.now(), message: `${name}: still waiting for the cancelled migrations to end` });
    }
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    const c = settings.concurrency;
    emit({ kind: 'stage', t: driver.clock.now(), stage: 'migrate', detail: `${bp.moves.length} moves, mode ${settings.mode}, at most ${c.total} at once, ${c.perSource} per source, ${c.perDestination} per destination` });
    const windowLeftMs = settings.windowEnd === undefined ? undefined : settings.windowEnd - Date.now();
    const run = await runBlueprint(bp, snap, settings, driver, emit, stop.signal, halt.signal, windowLeftMs);
    const report = buildReport(bp, snap, run, { start, end: new Date() });
    const paths = writeReports(opts.reports, report);
    sink.close();
    const t = report.totals;
    const col = paint(consoleOptions(process.stdout).color);
    process.stdout.write(`\n${col.bold(`${t.moved} of ${t.vms} VMs moved (${t.live} live, ${t.cold} cold), ${t.left} left in place, ${t.unplaced} not placeable, ${t.pinned} pinned; ${t.sourcesEmpty} of ${t.sources} sources empty.`)}\n`);
    process.stdout.write(`Makespan ${t.makespanS} s (lower bound ${t.lowerBoundS} s). Reports: ${paths.json}, ${paths.html}\n`);
    return exitCodeOf(run);
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    await driver.close();
  }
}
