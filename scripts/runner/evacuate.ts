/**
 * evacuate(): one evacuation (or rebalance) as a library call. It takes the loaded plan, a way to
 * open its driver, an event sink, abort signals and options, and returns a typed result; it never
 * prints and never exits. Callers: the CLI's `run`, the tests, and whatever runs several
 * evacuations in one process (a rolling maintenance).
 *
 * The journal is one consumer of the event stream: the run's start, its blueprint and its end are
 * events, so the journal, the console and the --events file see the same record. The report is
 * built in memory from the result; `evacuator report JOURNAL` rebuilds the same JSON from disk.
 */
import { randomUUID } from 'node:crypto';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { commandLine, EvacError, messageOf, userError } from '../errors.ts';
import type { EventSink, EvacEvent, RunEnd } from '../events.ts';
import { discover, type Snapshot } from '../fleet/discover.ts';
import type { Resources } from '../fleet/types.ts';
import type { Driver } from '../fleet/driver.ts';
import { guardDriver, type GuardLimits } from '../fleet/guard.ts';
import type { OpenOptions } from '../fleet/open.ts';
import type { Method } from '../model.ts';
import type { Unplaced } from '../placement/place.ts';
import type { LoadedPlan } from '../plan/load.ts';
import { emptyPatterns, selected, settingsOf, type Settings } from '../plan/settings.ts';
import { makeBlueprint, type Blueprint } from '../preflight/blueprint.ts';
import { makeRebalanceBlueprint } from '../preflight/rebalance.ts';
import { fromSaved, type SavedBlueprint } from '../preflight/saved.ts';
import { buildReport, exitCodeOf, type Report, type ReportInput } from '../report/build.ts';
import { writeReports } from '../report/write.ts';
import { coldDeadlineMs, deadlineMs } from './attempt.ts';
import { checkHolds, holding, liftStaleLeases, releaseDestinations, takeHosts } from './hold.ts';
import { lockFile } from '../process.ts';
import { chainOf, controller, Journal, journalPath, processStart, readJournal, stillRunning, type Chain } from './journal.ts';
import { carriedFrom, settleInFlight } from './resume.ts';
import { runBlueprint, type RunResult } from './run.ts';
import { resolveLimits } from './limits.ts';

/**
 * Opens the plan's driver with the options the journal calls for (a resume restores state and
 * continues the clock). evacuate() also takes an open driver, for a caller that runs several
 * evacuations on one fleet connection (it is then the caller's to close).
 */
export type DriverOpener = (opts: OpenOptions) => Promise<Driver>;

export interface EvacuateOptions {
  /** Where the journal, the reports and the simulator's state go. */
  reportsDir: string;
  /** Continue the last run of this plan from its journal. */
  resume?: boolean;
  /** Resume although the plan file changed since the run it continues (said in the report). */
  acceptChangedPlan?: boolean;
  /** Execute exactly this saved blueprint (evacuator plan --out) instead of planning again. */
  blueprint?: { saved: SavedBlueprint; file: string };
  /** Aborted: no new migration starts (a first interrupt). */
  stop?: AbortSignal;
  /** Aborted: live migrations in flight are cancelled (a second interrupt). */
  halt?: AbortSignal;
  /** Write the JSON and HTML reports (default true). */
  writeReports?: boolean;
  /** Bounds on driver calls before they count as hung (default: from the plan's deadlines, see guardLimits). */
  limits?: Partial<GuardLimits>;
}

export interface Evacuation {
  exitCode: number;
  blueprint: Blueprint;
  result: RunResult;
  report: Report;
  /** The journal, and the reports when written. */
  paths: { journal: string; json?: string; html?: string };
  /** The run's id and whether it continued an earlier one. */
  run: string;
  resumed: boolean;
}

/** How long a driver call may take before the run counts it as hung, from the plan's own deadlines. */
export function guardLimits(settings: Settings): GuardLimits {
  const minutes = (n: number) => n * 60_000;
  return {
    callMs: minutes(15),
    migrationMs: (vm, method: Method) => method === 'live'
      ? deadlineMs(vm, settings) + minutes(10)
      : coldDeadlineMs(vm, settings) + minutes(30),
    recoverMs: (waitMs) => waitMs + minutes(15),
  };
}

/** Discover, place and preflight: what a run would do, changing nothing. */
export async function preview(loaded: LoadedPlan, driver: Driver, emit: EventSink = () => {}): Promise<{ snap: Snapshot; bp: Blueprint }> {
  const settings = settingsOf(loaded.plan);
  emit({ kind: 'stage', t: driver.clock.now(), stage: 'discover', detail: `driver ${driver.name}` });
  const seen = await discover(driver, loaded.plan);
  refuseEmptySelection(loaded, settings, seen);
  return prepare(loaded, settings, seen, driver, emit);
}

/**
 * A `vms` pattern that selects no VM on the sources (nor one an earlier run of this plan moved)
 * is a mistake in the plan, not a run with nothing to do: bad input, each pattern at its line.
 */
function refuseEmptySelection(loaded: LoadedPlan, settings: Settings, seen: Snapshot, earlier: Iterable<string> = []): void {
  const empty = emptyPatterns(settings, [...seen.onSources.map((v) => v.name), ...earlier]);
  if (empty.length === 0) return;
  const on = seen.sources.map((h) => h.name).join(', ');
  const problems = empty.map((p) => {
    const message = `'${p}' selects no VM on the sources (${on})`;
    return loaded.problemAt?.(['vms', loaded.plan.vms!.indexOf(p)], message) ?? { file: loaded.file, line: 1, col: 1, path: 'vms', message };
  });
  throw userError(`${loaded.file}: ${empty.length} of the plan's vms patterns select no VM`, problems,
    '`evacuator plan` lists the VMs on the sources; in a pattern * and ? are wildcards and \\ takes the next character as itself');
}

/** Place and preflight on what discovery saw; VMs in skip (a resume could not settle them) stay out of reach. */
async function prepare(loaded: LoadedPlan, settings: Settings, seen: Snapshot, driver: Driver, emit: EventSink, skip: Set<string> = new Set()) {
  const snap = { ...seen, onSources: seen.onSources.filter((v) => !skip.has(v.name) && selected(settings, v.name)) };
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

/**
 * Refuse a run the journal says must not start: one still running, or an unfinished one not
 * being resumed. Returns the chain a resume continues.
 */
function gate(loaded: LoadedPlan, jpath: string, reportsDir: string, resume: boolean, acceptChanged = false): { chain?: Chain; lines: ReturnType<typeof readJournal> } {
  const name = loaded.plan.name;
  const resumeWith = commandLine('evacuator', 'run', loaded.file, ...(reportsDir === 'reports' ? [] : ['--reports', reportsDir]), '--resume');
  const lines = readJournal(jpath);
  const before = chainOf(lines);
  const last = before?.runs.at(-1);
  if (last && stillRunning(last)) {
    throw new EvacError(`run ${last.run} of plan '${name}' is still running (pid ${last.pid}, started ${last.at})`, 'held', [], `wait for it, or stop it (kill -INT ${last.pid}) and resume with: ${resumeWith}`);
  }
  if (last && !last.ended && !resume) {
    throw new EvacError(`run ${last.run} of plan '${name}' (started ${last.at}, pid ${last.pid} on ${last.controller}) did not finish; its journal is ${jpath}`, 'held', [],
      `resume it, so that the migrations it had in flight are settled first: ${resumeWith}`);
  }
  const first = before?.runs[0];
  if (resume && first && first.plan.digest !== loaded.digest && !acceptChanged) {
    throw userError(`${loaded.file} changed since the run it would resume (run ${first.run} started from ${first.plan.digest.slice(0, 19)}…, the file is now ${loaded.digest.slice(0, 19)}…)`, [],
      `restore the plan as it was to resume that run, or resume with the edited plan on purpose: ${resumeWith} --accept-changed-plan (the report says so)`);
  }
  return { ...(resume && before ? { chain: before } : {}), lines };
}

/** Run one evacuation of the plan to its end: the result, the report, the exit code. Refusals before anything moved throw EvacError. */
export async function evacuate(loaded: LoadedPlan, open: DriverOpener | Driver, sink: EventSink, opts: EvacuateOptions): Promise<Evacuation> {
  const settings = settingsOf(loaded.plan);
  const name = loaded.plan.name;
  const jpath = journalPath(opts.reportsDir, name);
  writableFolder(opts.reportsDir);
  // The journal's pid check cannot tell two evacuations of one process apart: this set does.
  const key = resolve(jpath);
  if (active.has(key)) throw new EvacError(`plan '${name}' is already being run in this process (journal ${jpath})`, 'held', [], 'wait for that evacuation to end');
  active.add(key);
  try {
    const unlock = lockFile(`${jpath}.lock`, (other) => new EvacError(`plan '${name}' is being run by pid ${other.pid} on ${other.controller} (since ${other.at}); its lock is ${jpath}.lock`, 'held', [],
      `wait for that run to end, or stop it (kill -INT ${other.pid}) and resume it`), `another run of plan '${name}' is starting at the same time (lock ${jpath}.lock)`);
    try {
      return await evacuateOnce(loaded, open, sink, opts, settings, jpath);
    } finally {
      unlock();
    }
  } finally {
    active.delete(key);
  }
}

/** When the journal's last migration ended (a change the fleet's own state must already hold), on the driver's clock. */
function lastChange(lines: ReturnType<typeof readJournal>): number {
  let t = 0;
  for (const l of lines) if (l.kind === 'move-end' && l.outcome === 'ok') t = Math.max(t, l.t);
  return t;
}

/** Journals of the evacuations running in this process. */
const active = new Set<string>();

async function evacuateOnce(loaded: LoadedPlan, open: DriverOpener | Driver, sink: EventSink, opts: EvacuateOptions, settings: Settings, jpath: string): Promise<Evacuation> {
  const name = loaded.plan.name;
  const { chain, lines } = gate(loaded, jpath, opts.reportsDir, opts.resume === true, opts.acceptChangedPlan === true);
  const origin = chain ? Date.parse(chain.runs[0].at) : Date.now();
  // An opener: this run opens the driver (a resume restores its state and clock) and closes it. A driver: the caller's, left open.
  const owned = typeof open === 'function';
  // A resumed simulator's clock goes on from the journal's last moment, never back to its state file's.
  const driver = guardDriver(owned ? await opened(() => open({ reportsDir: opts.reportsDir, resume: chain !== undefined, origin, ...(chain ? { since: chain.lastT, changedFleet: chain.lastPlanned !== undefined || chain.attempts.size > 0, changedUntil: lastChange(lines) } : {}) })) : open, { ...guardLimits(settings), ...opts.limits });
  // Nothing is journaled until the run first changes the fleet: a run refused before (bad input, held hosts) leaves no trace.
  // On disk (fsync) line by line where the fleet is real; the simulated fleet lives in files this
  // machine writes without fsync, so its journal needs no more than they have (a killed process
  // loses neither; a machine that loses power loses both alike), and a region-size run is not
  // made to wait thousands of fsyncs.
  const journal = new Journal(jpath, lines, { deferred: true, durable: driver.name !== 'sim' });
  const emit: EventSink = (e: EvacEvent) => {
    journal.write(e);
    try {
      // A sink that returns a promise (an async function) must not reject into the void either.
      const r: unknown = sink(e);
      if (r instanceof Promise) r.catch(() => {});
    } catch {
      // An output that fails (a closed pipe) never ends a run: the journal has the record.
    }
  };
  const stop = opts.stop ?? new AbortController().signal;
  const pidStart = processStart(process.pid);
  const who = { plan: name, run: randomUUID().slice(0, 8), controller: controller(), pid: process.pid, ...(pidStart ? { pidStart } : {}) };
  const start = { kind: 'run-start' as const, ...who, ...(pidStart ? { pidStart } : {}), plan: { name, file: loaded.file, digest: loaded.digest }, driver: loaded.plan.fleet.driver, resumed: chain !== undefined, at: new Date().toISOString(), t: driver.clock.now() };
  // The evacuation's time zero on the driver's clock: this run's start, or a resumed chain's first (a clock shared with earlier evacuations does not start at 0).
  const t0 = chain ? chain.runs[0].t ?? 0 : start.t;
  let leased: string[] = [];
  let ended = false;
  let releaseRun = () => {};
  const end = (e: Omit<RunEnd, 'kind' | 'at'>): RunEnd => {
    const line: RunEnd = { kind: 'run-end', ...e, at: new Date().toISOString() };
    emit(line);
    ended = true;
    return line;
  };
  /** Lift the destinations' leases, once; one that stays is said, with how to lift it. */
  const lift = async () => {
    const held = leased;
    leased = [];
    for (const f of await releaseDestinations(driver, held)) {
      emit({ kind: 'warning', t: driver.clock.now(), message: `${f.host} is still leased to this run (${f.detail}); other plans are refused there until \`${commandLine('evacuator', 'clear', loaded.file)}\` lifts it (which also lifts the sources' fences)` });
    }
  };
  try {
    emit(start);
    if (opts.resume && !chain) emit({ kind: 'warning', t: 0, message: `no earlier run of '${name}' in ${jpath}: starting a new one` });
    let state = chain;
    if (chain && chain.inFlight.length > 0) {
      // Settled first, before discovery: what the killed run left in flight changes the fleet.
      journal.commit();
      emit({ kind: 'stage', t: driver.clock.now(), stage: 'recover', detail: `${chain.inFlight.length} migration(s) were in flight when the last run stopped` });
      await settleInFlight(chain, driver, settings, emit);
      state = chainOf([...lines, ...journal.written]);
    }
    emit({ kind: 'stage', t: driver.clock.now(), stage: 'discover', detail: `driver ${driver.name}` });
    const seen = await discover(driver, loaded.plan);
    if (chain) {
      // A VM the earlier run planned to move that is nowhere now (deleted while the run was down) is said, not silently dropped.
      const everywhere = new Set(seen.inventory.vms.map((v) => v.name));
      const silent = new Set(seen.inventory.unreachable.map((u) => u.host));
      const sourceOf = new Map((chain.lastPlanned?.moves ?? []).map((m) => [m.vm, m.source]));
      const gone = [...chain.planned].filter(([vm, dest]) => !everywhere.has(vm) && !silent.has(dest) && !silent.has(sourceOf.get(vm) ?? '') && chain.results.get(vm)?.status !== 'moved').map(([vm]) => vm);
      if (gone.length > 0) seen.warnings.push(`${gone.length} VM(s) the earlier run planned to move are no longer in the fleet (deleted?): ${gone.slice(0, 20).join(', ')}${gone.length > 20 ? ', …' : ''}`);
    }
    if (chain && chain.runs[0].plan.digest !== loaded.digest) {
      seen.warnings.push(`resumed with ${loaded.file} changed since run ${chain.runs[0].run} began (--accept-changed-plan): the moves already made followed the plan as it was`);
    }
    refuseEmptySelection(loaded, settings, seen, state?.results.keys());
    await liftStaleLeases(driver, seen.destinations, (message) => emit({ kind: 'warning', t: driver.clock.now(), message }));
    // Refuse before touching anything if another plan holds these hosts.
    checkHolds(name, seen.sources, seen.destinations);
    const unsettled = new Set([...state?.results.values() ?? []].filter((r) => r.host === null).map((r) => r.vm));
    const done = new Set([...state?.results.values() ?? []].filter((r) => r.status === 'moved').map((r) => r.vm));
    const { snap, bp } = opts.blueprint
      ? await fromSaved(opts.blueprint.saved, opts.blueprint.file, { ...seen, onSources: seen.onSources.filter((v) => !unsettled.has(v.name)) }, loaded, settings, driver, done)
      : await prepare(loaded, settings, seen, driver, emit, unsettled);
    const destinations = seen.destinations.map((h) => h.name);
    // A signal while the run read and planned (placement of a region takes seconds): it ends here,
    // having changed nothing. Placement and a simulated preflight never leave the microtask queue,
    // so the signal is only seen once the event loop turns: a timer and an immediate (an immediate
    // alone was measured not to let a signal that came during placement through).
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setImmediate(r));
    if (stop.aborted) {
      // A resume has settled what the killed run left in flight (each said above); nothing else moved.
      if (chain && chain.inFlight.length > 0) {
        throw new EvacError(`interrupted after settling the ${chain.inFlight.length} migration(s) the last run had in flight; nothing else moved, and the sources are still fenced`, 'interrupted', [], `resume it when you are ready: ${commandLine('evacuator', 'run', loaded.file, ...(opts.reportsDir === 'reports' ? [] : ['--reports', opts.reportsDir]), '--resume')}`);
      }
      throw new EvacError('interrupted before the run changed anything: no host was fenced and no VM moved', 'interrupted', [], 'run it again when you are ready');
    }
    releaseRun = holding(who.run);
    journal.commit();
    await takeHosts(driver, who, loaded.plan.sources ?? [], destinations);
    // A plan that moves only some VMs (vms) does not put its sources in maintenance: they are released too.
    leased = loaded.plan.vms ? [...loaded.plan.sources ?? [], ...destinations] : destinations;
    emit({
      kind: 'planned', t: driver.clock.now(), moves: bp.moves, vms: snap.onSources, unplaced: bp.unplaced.map(fewHosts), pinned: bp.pinned,
      sources: bp.sources, destinations: bp.destinations, warnings: bp.warnings, inventory: snap.inventory, limits: limitsOf(snap, settings),
      ...(bp.rebalance ? { rebalance: bp.rebalance } : {}),
    });
    const limits = resolveLimits(settings.concurrency, snap, driver, settings.bandwidthMibps);
    emit({ kind: 'stage', t: driver.clock.now(), stage: 'migrate', moves: bp.moves.length, detail: `${bp.moves.length} moves, mode ${settings.mode}, ${limits.describe}` });
    const carried = state ? carriedFrom(state, new Set(snap.onSources.map((v) => v.name))) : undefined;
    const result = await runBlueprint(bp, snap, settings, driver, emit, {
      stop, ...(opts.halt ? { halt: opts.halt } : {}),
      ...(settings.windowEnd !== undefined ? { windowLeftMs: settings.windowEnd - Date.now() } : {}),
      startedAt: t0, limits,
      ...(carried ? carried : {}),
    });
    await lift();
    const exitCode = exitCodeOf(result);
    const write = opts.writeReports !== false;
    if (write) emit({ kind: 'stage', t: driver.clock.now(), stage: 'report', detail: `JSON and HTML in ${opts.reportsDir}` });
    const runEnd = end({ t: result.endedAt, exitCode, interrupted: result.interrupted, proofs: result.proofs, after: result.after, ...(result.rebalance ? { rebalance: result.rebalance } : {}) });
    const report = buildReport(reportInput(loaded, bp, snap, result, chain, t0, start.at, runEnd.at, settings));
    const paths = { journal: jpath, ...(write ? writeReports(opts.reportsDir, report) : {}) };
    return { exitCode, blueprint: bp, result, report, paths, run: who.run, resumed: chain !== undefined };
  } catch (e) {
    // Refused before anything moved (bad input, a host that does not answer, hosts held), or a
    // bug: either way this run is over, and its journal says so.
    if (!ended) {
      await lift();
      end({ t: driver.clock.now(), exitCode: e instanceof EvacError ? e.exitCode : 1, interrupted: e instanceof EvacError && e.source === 'interrupted', error: messageOf(e) });
    }
    throw e;
  } finally {
    releaseRun();
    journal.close();
    if (owned) await driver.close();
  }
}

/** The report's input from the run in memory: the same facts `evacuator report` reads back from the journal. */
/** What each source and destination may hold under the plan: (capacity - reserve) x overcommit, per resource. */
function limitsOf(snap: Snapshot, settings: Settings): Record<string, Resources> {
  const out: Record<string, Resources> = {};
  for (const h of [...snap.sources, ...snap.destinations]) {
    out[h.name] = Object.fromEntries(Object.entries(h.capacity).map(([k, cap]) => [k, Math.max(0, cap - (settings.reserve[k] ?? 0)) * (settings.overcommit[k] ?? 1)]));
  }
  return out;
}

function reportInput(loaded: LoadedPlan, bp: Blueprint, snap: Snapshot, result: RunResult, chain: Chain | undefined, t0: number, startedAt: string, endedAt: string, settings: Settings): ReportInput {
  return {
    limits: limitsOf(snap, settings),
    plan: { name: loaded.plan.name, file: loaded.file, digest: loaded.digest },
    driver: loaded.plan.fleet.driver,
    sources: bp.sources,
    destinations: bp.destinations,
    warnings: bp.warnings,
    before: chain?.before ?? snap.inventory,
    after: result.after,
    vms: result.vms,
    proofs: result.proofs,
    ...(bp.rebalance ? { rebalance: { planned: bp.rebalance, ...(result.rebalance ? { result: result.rebalance } : {}) } } : {}),
    estimates: Object.fromEntries(bp.moves.map((m) => [m.vm, m.estimateS])),
    least: Object.fromEntries(bp.moves.flatMap((m) => (m.leastMib === undefined ? [] : [[m.vm, m.leastMib]]))),
    best: Object.fromEntries(bp.moves.flatMap((m) => (m.bestMibps === undefined ? [] : [[m.vm, m.bestMibps]]))),
    interrupted: result.interrupted,
    startedAt: t0,
    endedAt: result.endedAt,
    wall: { start: new Date(chain?.runs[0]?.at ?? startedAt), end: new Date(endedAt) },
  };
}

/** The reports folder exists (made if need be) and can be written, before anything else happens. */
function writableFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? `${code}: a file is in the way, not a folder` : code ?? String(e);
    throw userError(`cannot write to the reports folder ${dir}: ${why}`, [],
      'give --reports a folder that exists or can be made, and that this user can write');
  }
}

/** Open the driver; a driver that cannot even be opened (its settings, its state file) is bad input, and nothing was touched. */
async function opened(open: () => Promise<Driver>): Promise<Driver> {
  try {
    return await open();
  } catch (e) {
    if (e instanceof EvacError) throw e;
    throw userError(`cannot open the fleet: ${messageOf(e)}`, [], 'check the fleet section of the plan (a sim state_file must be a fleet state evacuator wrote, in a folder that exists)');
  }
}

/**
 * An unplaced VM as the journal keeps it: each reason's text says on how many hosts, and names at
 * most 20 of them (a region's thousand unplaceable VMs times its two thousand hosts would be most
 * of the journal; `evacuator plan --json` still lists every host).
 */
function fewHosts(u: Unplaced): Unplaced {
  return u.reasons.every((r) => r.hosts.length <= 20) ? u : { ...u, reasons: u.reasons.map((r) => (r.hosts.length <= 20 ? r : { ...r, hosts: r.hosts.slice(0, 20) })) };
}
