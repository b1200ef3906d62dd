/** The subcommands plan, run, clear, report (validate and moveback have their own modules). Each returns its exit code; errors go to one catch in the entry. */
import { randomUUID } from 'node:crypto';
import { openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EventSink } from '../events.ts';
import { EvacError, ExitCode } from '../errors.ts';
import { discover } from '../fleet/discover.ts';
import type { Driver } from '../fleet/driver.ts';
import { openDriver, type OpenOptions } from '../fleet/open.ts';
import { describeFence } from '../fleet/types.ts';
import { loadPlan, type LoadedPlan } from '../plan/load.ts';
import { selected, settingsOf, type Settings } from '../plan/settings.ts';
import { makeBlueprint, type Blueprint } from '../preflight/blueprint.ts';
import { makeRebalanceBlueprint } from '../preflight/rebalance.ts';
import { buildReport, exitCodeOf } from '../report/build.ts';
import { reportFromJournal } from '../report/replay.ts';
import { writeReports } from '../report/write.ts';
import { checkHolds, releaseDestinations, takeHosts } from '../runner/hold.ts';
import { chainOf, controller, Journal, journalPath, processStart, readJournal, stillRunning } from '../runner/journal.ts';
import { carriedFrom, settleInFlight } from '../runner/resume.ts';
import { runBlueprint } from '../runner/run.ts';
import { consoleOptions, consoleSink, paint } from './console.ts';
import { finishInActions, groupSink, inActions } from './github.ts';

/** Discover, place and preflight: what `run` would do, changing nothing. */
async function prepare(loaded: LoadedPlan, settings: Settings, driver: Driver, emit: EventSink, skip: Set<string> = new Set()) {
  emit({ kind: 'stage', t: driver.clock.now(), stage: 'discover', detail: `driver ${driver.name}` });
  const found = await discover(driver, loaded.plan);
  // VMs a resume could not settle stay out of this run's reach.
  const snap = { ...found, onSources: found.onSources.filter((v) => !skip.has(v.name) && selected(settings, v.name)) };
  for (const w of snap.warnings) emit({ kind: 'warning', t: driver.clock.now(), message: w });
  if (settings.kind === 'rebalance') {
    emit({ kind: 'stage', t: driver.clock.now(), stage: 'place', detail: `rebalancing ${snap.destinations.length} hosts, ${snap.residents.length} VMs` });
    const r = await makeRebalanceBlueprint(loaded, settings, snap, driver);
    emit({ kind: 'stage', t: driver.clock.now(), stage: 'preflight', detail: `${r.bp.moves.length} moves cleared, ${r.bp.unplaced.length} refused` });
    return r;
  }
  emit({ kind: 'stage', t: driver.clock.now(), stage: 'place', detail: `${snap.onSources.length} VMs on ${snap.sources.length} source(s), ${snap.destinations.length} destination(s), policy ${settings.policy}` });
  const bp = await makeBlueprint(loaded, settings, snap, driver);
  emit({ kind: 'stage', t: driver.clock.now(), stage: 'preflight', detail: `${bp.moves.length} moves cleared, ${bp.unplaced.length} VM(s) cannot move` });
  return { snap, bp };
}

/** Open the plan's driver and always close it (open SSH connections would keep the process alive). */
async function withDriver<T>(loaded: LoadedPlan, opts: OpenOptions, body: (driver: Driver) => Promise<T>): Promise<T> {
  const driver = await openDriver(loaded.plan, opts);
  try {
    return await body(driver);
  } finally {
    await driver.close();
  }
}

export async function planCommand(file: string, opts: { json?: boolean }): Promise<number> {
  const log = consoleSink({ ...consoleOptions(process.stderr), live: false });
  const loaded = loadPlan(file);
  const { bp } = await withDriver(loaded, {}, (driver) => prepare(loaded, settingsOf(loaded.plan), driver, opts.json ? () => {} : log));
  if (opts.json) process.stdout.write(`${JSON.stringify(bp, null, 2)}\n`);
  else process.stdout.write(describeBlueprint(bp, paint(consoleOptions(process.stdout).color)));
  if (bp.rebalance) return bp.rebalance.reached ? ExitCode.ok : ExitCode.incomplete;
  return bp.unplaced.length === 0 ? ExitCode.ok : ExitCode.incomplete;
}

function describeBlueprint(bp: Blueprint, c: ReturnType<typeof paint>): string {
  if (bp.rebalance) return describeRebalance(bp, c);
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
  /** Also write every event as a JSON line here ('-' for stdout). */
  events?: string;
}

export async function runCommand(file: string, opts: RunOptions): Promise<number> {
  const loaded = loadPlan(file);
  const settings = settingsOf(loaded.plan);
  const name = loaded.plan.name;
  const jpath = journalPath(opts.reports, name);
  const lines = readJournal(jpath);
  const before = chainOf(lines);
  const last = before?.runs.at(-1);
  if (last && stillRunning(last)) {
    throw new EvacError(`run ${last.run} of plan '${name}' is still running (pid ${last.pid}, started ${last.at})`, 'held', [], `wait for it, or stop it (kill -INT ${last.pid}) and resume with: evacuator run ${file} --resume`);
  }
  if (last && !last.ended && !opts.resume) {
    throw new EvacError(`run ${last.run} of plan '${name}' (started ${last.at}, pid ${last.pid} on ${last.controller}) did not finish; its journal is ${jpath}`, 'held', [],
      `resume it, so that the migrations it had in flight are settled first: evacuator run ${file} --resume`);
  }
  const chain = opts.resume ? before : undefined;
  const origin = chain ? Date.parse(chain.runs[0].at) : Date.now();

  const sink = consoleSink(consoleOptions(process.stdout));
  const journal = new Journal(jpath, lines);
  const stream = opts.events ? eventStream(opts.events) : undefined;
  const groups = inActions() ? groupSink(process.stdout) : undefined;
  const emit: EventSink = (e) => {
    journal.write(e);
    stream?.(e);
    groups?.(e);
    sink(e);
  };
  const pidStart = processStart(process.pid);
  const who = { plan: name, run: randomUUID().slice(0, 8), controller: controller(), pid: process.pid };
  journal.write({ kind: 'run-start', ...who, ...(pidStart ? { pidStart } : {}), plan: { name, file, digest: loaded.digest }, driver: loaded.plan.fleet.driver, resumed: chain !== undefined });
  if (opts.resume && !chain) emit({ kind: 'warning', t: 0, message: `no earlier run of '${name}' in ${jpath}: starting a new one` });

  const stop = new AbortController();
  const halt = new AbortController();
  let signals = 0;
  let clock: Driver['clock'] | undefined;
  const onSignal = (sig: string) => {
    signals++;
    const t = clock?.now() ?? 0;
    if (signals === 1) {
      emit({ kind: 'warning', t, message: `${sig}: starting no new migrations; waiting for those in flight, then writing reports` });
      stop.abort();
    } else if (signals === 2) {
      emit({ kind: 'warning', t, message: `${sig} again: cancelling live migrations in flight (their guests stay on their sources); a cold migration already copying finishes, so no VM is left half-moved` });
      halt.abort();
    } else {
      emit({ kind: 'warning', t, message: `${sig}: still waiting for the cancelled migrations to end` });
    }
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  let leased: string[] = [];
  try {
    return await withDriver(loaded, { reportsDir: opts.reports, resume: chain !== undefined, origin }, async (driver) => {
      clock = driver.clock;
      try {
        // Hold the hosts before touching anything: refuse if another plan holds them.
        const seen = await discover(driver, loaded.plan);
        checkHolds(name, seen.sources, seen.destinations);
        const destinations = seen.destinations.map((h) => h.name);
        await takeHosts(driver, who, loaded.plan.sources ?? [], destinations);
        // A plan that moves only some VMs (vms) does not put its sources in maintenance: they are released too.
        leased = loaded.plan.vms ? [...loaded.plan.sources ?? [], ...destinations] : destinations;
        let state = chain;
        if (chain && chain.inFlight.length > 0) {
          emit({ kind: 'stage', t: driver.clock.now(), stage: 'recover', detail: `${chain.inFlight.length} migration(s) were in flight when the last run stopped` });
          await settleInFlight(chain, driver, settings, emit);
          state = chainOf(readJournal(jpath));
        }
        const unsettled = new Set([...state?.results.values() ?? []].filter((r) => r.host === null).map((r) => r.vm));
        const { snap, bp } = await prepare(loaded, settings, driver, emit, unsettled);
        journal.write({
          kind: 'planned', t: driver.clock.now(), moves: bp.moves, vms: snap.onSources, unplaced: bp.unplaced, pinned: bp.pinned,
          sources: bp.sources, destinations: bp.destinations, warnings: bp.warnings, inventory: snap.inventory,
          ...(bp.rebalance ? { rebalance: bp.rebalance } : {}),
        });
        const c = settings.concurrency;
        emit({ kind: 'stage', t: driver.clock.now(), stage: 'migrate', moves: bp.moves.length, detail: `${bp.moves.length} moves, mode ${settings.mode}, at most ${c.total} at once, ${c.perSource} per source, ${c.perDestination} per destination` });
        const carried = state ? carriedFrom(state, new Set(snap.onSources.map((v) => v.name))) : undefined;
        const run = await runBlueprint(bp, snap, settings, driver, emit, {
          stop: stop.signal, halt: halt.signal,
          ...(settings.windowEnd !== undefined ? { windowLeftMs: settings.windowEnd - Date.now() } : {}),
          ...(carried ? { ...carried, startedAt: 0 } : {}),
        });
        const code = exitCodeOf(run);
        // The reports are built from the journal, as `evacuator report` would: one record, two views.
        emit({ kind: 'stage', t: driver.clock.now(), stage: 'report', detail: `from ${jpath}` });
        journal.write({ kind: 'run-end', t: run.endedAt, exitCode: code, interrupted: run.interrupted, proofs: run.proofs, after: run.after, ...(run.rebalance ? { rebalance: run.rebalance } : {}) });
        const report = buildReport(reportFromJournal(readJournal(jpath), jpath));
        const paths = writeReports(opts.reports, report);
        sink.close();
        const t = report.totals;
        const col = paint(consoleOptions(process.stdout).color);
        const rb = report.rebalance;
        process.stdout.write(rb
          ? `\n${col.bold(`${t.moved} of ${t.vms} planned moves done (${(t.bytes / GiB).toFixed(1)} GiB sent); target ${rb.reached ? 'reached on every host' : `not reached: ${rb.shortfall.join('; ')}`}.`)}\n`
          : `\n${col.bold(`${t.moved} of ${t.vms} VMs moved (${t.live} live, ${t.cold} cold), ${t.left} left in place, ${t.unplaced} not placeable, ${t.pinned} pinned; ${t.sourcesEmpty} of ${t.sources} sources empty.`)}\n`);
        process.stdout.write(`Makespan ${t.makespanS} s (lower bound ${t.lowerBoundS} s). Reports: ${paths.json}, ${paths.html}\n`);
        if (groups) {
          groups.close();
          finishInActions(process.stdout, report, paths);
        }
        if (!loaded.plan.vms && !rb) process.stdout.write(`${bp.sources.join(', ')} stay fenced for the maintenance; afterwards: evacuator clear ${file}\n`);
        return code;
      } catch (e) {
        // Refused before anything moved (bad input, a host that does not answer, hosts held): this run is over.
        if (e instanceof EvacError) journal.write({ kind: 'run-end', t: driver.clock.now(), exitCode: e.exitCode, interrupted: false });
        throw e;
      } finally {
        await releaseDestinations(driver, leased);
      }
    });
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    journal.close();
  }
}

/** --events: the event stream as JSON lines, for other tools. */
function eventStream(target: string): EventSink {
  const fd = target === '-' ? 1 : openSync(target, 'a');
  return (e) => writeSync(fd, `${JSON.stringify(e)}\n`);
}

/** Rebuild the JSON and HTML reports from a journal (also of a run that was killed). */
export function reportCommand(journalFile: string, opts: { reports?: string }): number {
  const lines = readJournal(journalFile);
  const report = buildReport(reportFromJournal(lines, journalFile));
  const paths = writeReports(opts.reports ?? dirname(journalFile), report);
  process.stdout.write(`${paths.json}, ${paths.html}: ${report.result}, ${report.totals.moved} of ${report.totals.vms} VMs moved, ${report.totals.sourcesEmpty} of ${report.totals.sources} sources empty\n`);
  return ExitCode.ok;
}

/** Lift the fences this plan's runs left on the fleet (with force, anyone's). */
export async function clearCommand(file: string, opts: { reports: string; force?: boolean }): Promise<number> {
  const loaded = loadPlan(file);
  const name = loaded.plan.name;
  const last = chainOf(readJournal(journalPath(opts.reports, name)))?.runs.at(-1);
  if (last && stillRunning(last)) throw new EvacError(`run ${last.run} of plan '${name}' is still running (pid ${last.pid})`, 'held', [], 'let it finish (or interrupt it) before lifting its fences');
  return withDriver(loaded, { reportsDir: opts.reports, resume: true }, async (driver) => {
    const got = await driver.inventory();
    if (!got.ok) throw new EvacError(`cannot read the fleet: ${got.detail}`, 'fleet', [], 'check that the hosts answer, then run again');
    const fenced = got.inventory.hosts.filter((h) => h.fence && (h.fence.plan === name || opts.force));
    const others = got.inventory.hosts.filter((h) => h.fence && h.fence.plan !== name && !opts.force);
    for (const h of fenced) {
      const r = await driver.fence(h.name, null, true);
      process.stdout.write(r.ok ? `${h.name}: lifted the fence of ${describeFence(h.fence!)}\n` : `${h.name}: could not lift its fence: ${r.detail}\n`);
    }
    for (const h of others) process.stdout.write(`${h.name}: left as it is, fenced by ${describeFence(h.fence!)} (--force lifts it)\n`);
    if (fenced.length === 0) process.stdout.write(`no host is fenced by plan '${name}'\n`);
    for (const u of got.inventory.unreachable) process.stdout.write(`${u.host}: did not answer (${u.detail}); its fence, if any, is still there\n`);
    return got.inventory.unreachable.length > 0 ? ExitCode.fleet : ExitCode.ok;
  });
}
