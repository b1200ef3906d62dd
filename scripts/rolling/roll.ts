/**
 * roll(): a rolling maintenance (kind: rolling) as one resumable run. For each wave: prove it can
 * be emptied (waves.ts), run before_host, empty it with the same evacuation as `run` (evacuate(),
 * in process, on the same driver, its own journal under reports/<plan>.roll/), maintain each host
 * that is empty (command, or the simulator's step), wait until it is back and passes its checks,
 * lift its fence, run after_host; then the next wave, planned again on the fleet as it is.
 *
 * The roll's own journal (reports/<plan>.roll.jsonl) has a line per step of each host; a killed
 * roll resumed (`run PLAN --resume`) skips the hosts done, resumes the wave's evacuation from its
 * journal, runs a maintenance step that started but did not end again (steps must be
 * idempotent: the README says so), and checks again.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { commandLine, EvacError, messageOf } from '../errors.ts';
import type { EventSink } from '../events.ts';
import type { Driver } from '../fleet/driver.ts';
import { guardDriver } from '../fleet/guard.ts';
import type { OpenOptions } from '../fleet/open.ts';
import { describeFence, type Host, type Inventory } from '../fleet/types.ts';
import { writeAll, readInput } from '../files.ts';
import { withDefaults } from '../plan/defaults.ts';
import type { LoadedPlan } from '../plan/load.ts';
import type { EvacuationPlan, Rolling } from '../plan/plan-types.ts';
import { declaredFleet, labelsMatch, matchesDestinations } from '../plan/rules.ts';
import { exactPattern, settingsOf } from '../plan/settings.ts';
import { controller, lockFile, processStart, stillRunning } from '../process.ts';
import { evacuate, guardLimits, type Evacuation } from '../runner/evacuate.ts';
import { chainOf, cutTornTail, journalPath, readJournal } from '../runner/journal.ts';
import { findProgram, keptOutput, masker, runCommand, type CommandResult } from './steps.ts';
import { planWaves, type RollPlan } from './waves.ts';
import type { HostStatus, RollHost, RollReport, RollVm } from './report.ts';

export type { HostStatus, RollHost, RollReport, RollVm } from './report.ts';

export const rollJournalPath = (reportsDir: string, name: string) => join(reportsDir, `${name}.roll.jsonl`);
export const waveDir = (reportsDir: string, name: string, wave: number) => join(reportsDir, `${name}.roll`, `wave-${wave}`);
/** The crash tests' kill point in the roll's own journal (the waves' journals use EVACUATOR_KILL_AFTER). */
export const ROLL_KILL_AFTER_ENV = 'EVACUATOR_ROLL_KILL_AFTER';


export type RollLine = { seq: number; at: string; t: number } & (
  | { kind: 'roll-start'; run: string; controller: string; pid: number; pidStart?: string; plan: { name: string; file: string; digest: string }; driver?: string; resumed: boolean }
  | { kind: 'roll-planned'; waves: { hosts: string[]; moves: number; again: number }[]; blocked: { host: string; why: string }[]; origins?: Record<string, string> }
  | { kind: 'warning'; message: string }
  | { kind: 'hook'; hook: string; host?: string; result: CommandResult }
  | { kind: 'wave-start'; wave: number; hosts: string[] }
  | { kind: 'wave-evacuated'; wave: number; exitCode: number; empty: string[]; notEmpty: { host: string; left: string[] }[]; moves: { vm: string; from: string; to: string; bytes: number; method: string }[]; report?: string }
  | { kind: 'step-start'; host: string; step: 'maintain' | 'check' }
  | { kind: 'step-pid'; host: string; pid: number; pidStart?: string }
  | { kind: 'step-end'; host: string; step: 'maintain' | 'check'; ok: boolean; detail: string; output?: string; durationMs: number }
  | { kind: 'host-done'; host: string; wave: number; status: HostStatus; why: string }
  /** Pinned VMs about to be shut down on their host (written before the first request: a resume starts them again). */
  | { kind: 'pinned-stop'; host: string; vms: string[] }
  /** off: a VM whose shutdown failed was found shut off all the same (it is started again like the others). */
  | { kind: 'pinned-done'; host: string; action: 'stop' | 'start'; results: { vm: string; ok: boolean; detail: string; off?: boolean }[] }
  | { kind: 'wave-end'; wave: number }
  | { kind: 'return'; moved: number; exitCode: number }
  | { kind: 'roll-end'; exitCode: number; error?: string; interrupted: boolean }
);
type Entry = RollLine extends infer L ? L extends RollLine ? Omit<L, 'seq' | 'at'> : never : never;

/** The roll's journal: one JSON line per step, fsynced on real fleets; torn last line cut. */
class RollJournal {
  private fd: number | undefined;
  private seq: number;
  private readonly killAfter = Number(process.env[ROLL_KILL_AFTER_ENV] ?? 0);
  /** Lines held until the roll first does something (a hook, a wave): a roll refused before writes nothing. */
  private pending: RollLine[] | undefined = [];
  constructor(readonly path: string, previous: RollLine[], private readonly durable: boolean) {
    this.seq = previous.at(-1)?.seq ?? 0;
  }
  commit(): void {
    if (!this.pending) return;
    const held = this.pending;
    this.pending = undefined;
    mkdirSync(dirname(this.path), { recursive: true });
    cutTornTail(this.path);
    this.fd = openSync(this.path, 'a');
    for (const l of held) this.put(l);
  }
  write(e: Entry): RollLine {
    const line = { ...e, seq: ++this.seq, at: new Date().toISOString() } as RollLine;
    if (this.pending) this.pending.push(line);
    else this.put(line);
    return line;
  }
  private put(line: RollLine): void {
    writeAll(this.fd!, Buffer.from(`${JSON.stringify(line)}\n`));
    if (this.durable) fsyncSync(this.fd!);
    if (this.killAfter > 0 && line.seq >= this.killAfter) process.kill(process.pid, 'SIGKILL');
  }
  get committed(): boolean {
    return this.pending === undefined;
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export function readRollJournal(path: string): RollLine[] {
  if (!existsSync(path)) return [];
  const text = readInput(path, 'roll journal', 'give the roll journal a run wrote: reports/<plan name>.roll.jsonl');
  const out: RollLine[] = [];
  const lines = text.split('\n');
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    try {
      out.push(JSON.parse(l) as RollLine);
    } catch {
      // A last line cut short by a kill is not a step that happened; one in the middle is damage.
      if (lines.slice(i + 1).some((x) => x.trim())) throw new EvacError(`${path} is damaged at line ${i + 1}`, 'user', [], 'give the roll journal a run wrote, unedited');
    }
  });
  return out;
}

/** What the roll's journal says so far: hosts done, the wave in progress and how far each of its hosts got. */
export interface RollState {
  lines: RollLine[];
  status: Map<string, { status: HostStatus; why: string; wave: number }>;
  /** The last wave started and not ended. */
  open?: { wave: number; hosts: string[]; at: string; evacuated?: Extract<RollLine, { kind: 'wave-evacuated' }> };
  /** Last step line per host of the open wave. */
  steps: Map<string, Extract<RollLine, { kind: 'step-start' | 'step-end' }>>;
  /** The maintenance command's process per host, while its step has not ended. */
  pids: Map<string, { pid: number; pidStart?: string }>;
  waves: number;
  ended: boolean;
  last?: Extract<RollLine, { kind: 'roll-start' }>;
  beforeRollDone: boolean;
  /** Pinned VMs the roll shut down and has not started again, by host. */
  pinnedDown: Map<string, string[]>;
}

export function rollState(lines: RollLine[]): RollState {
  const s: RollState = { lines, status: new Map(), steps: new Map(), pids: new Map(), waves: 0, ended: false, beforeRollDone: false, pinnedDown: new Map() };
  for (const l of lines) {
    if (l.kind === 'roll-start') {
      s.last = l;
      s.ended = false;
    } else if (l.kind === 'roll-end') s.ended = !l.interrupted && l.exitCode !== 130;
    else if (l.kind === 'hook' && l.hook === 'before_roll' && l.result.ok) s.beforeRollDone = true;
    else if (l.kind === 'wave-start') {
      s.open = { wave: l.wave, hosts: l.hosts, at: l.at };
      s.waves = Math.max(s.waves, l.wave);
      s.steps = new Map();
    } else if (l.kind === 'wave-evacuated' && s.open?.wave === l.wave) s.open.evacuated = l;
    else if (l.kind === 'step-start' || l.kind === 'step-end') {
      s.steps.set(l.host, l);
      if (l.kind === 'step-end') s.pids.delete(l.host);
    } else if (l.kind === 'step-pid') s.pids.set(l.host, { pid: l.pid, ...(l.pidStart ? { pidStart: l.pidStart } : {}) });
    else if (l.kind === 'host-done') s.status.set(l.host, { status: l.status, why: l.why, wave: l.wave });
    else if (l.kind === 'wave-end' && s.open?.wave === l.wave) s.open = undefined;
    else if (l.kind === 'pinned-stop') s.pinnedDown.set(l.host, [...new Set([...s.pinnedDown.get(l.host) ?? [], ...l.vms])]);
    else if (l.kind === 'pinned-done' && l.action === 'stop') s.pinnedDown.set(l.host, (s.pinnedDown.get(l.host) ?? []).filter((v) => !l.results.some((x) => x.vm === v && !x.ok && !x.off)));
    else if (l.kind === 'pinned-done' && l.action === 'start') s.pinnedDown.set(l.host, (s.pinnedDown.get(l.host) ?? []).filter((v) => !l.results.some((x) => x.vm === v && x.ok)));
  }
  return s;
}

export interface RollOptions {
  reportsDir: string;
  resume?: boolean;
  /** With resume: although the plan changed since the roll began. */
  acceptChangedPlan?: boolean;
  stop?: AbortSignal;
  halt?: AbortSignal;
  /** Console sink of the waves' evacuations and the roll's own stages. */
  writeReports?: boolean;
}

/** wave: N that cannot hold: a wave before the last smaller than N (conflicts or room), with why; undefined when it holds. */
export function waveShortfall(rp: RollPlan, wave: number | 'auto'): string | undefined {
  if (wave === 'auto' || wave < 2) return undefined;
  const i = rp.waves.findIndex((w, k) => k < rp.waves.length - 1 && w.hosts.length < wave);
  if (i < 0) return undefined;
  const w = rp.waves[i];
  return `wave: ${wave} cannot hold: wave ${i + 1} takes ${w.hosts.length} host(s) (${w.hosts.join(', ')})${w.notes.length ? `: ${w.notes.slice(0, 3).join('; ')}` : ''}`;
}

/** The hosts to maintain: sources in their order, then the selector's hosts by name. */
export function rollHosts(plan: EvacuationPlan, hosts: Pick<Host, 'name' | 'labels'>[]): string[] {
  const out = [...plan.sources ?? []];
  const sel = plan.rolling?.selector;
  if (sel) for (const h of [...hosts].sort((a, b) => a.name.localeCompare(b.name))) if (labelsMatch(h.labels, sel) && !out.includes(h.name)) out.push(h.name);
  return out;
}

type Filled<T, K extends keyof T> = T & Required<Pick<T, K>>;
/** The roll's settings with the schema's defaults, its sections' too (checks and hooks are there even when the plan has none). */
export type RollSettings = Filled<Rolling, 'wave' | 'max_wave' | 'order' | 'on_failure' | 'return' | 'pinned'> & {
  checks: Filled<NonNullable<Rolling['checks']>, 'timeout_s' | 'interval_s'>;
  hooks: Filled<NonNullable<Rolling['hooks']>, 'timeout_s'>;
  maintenance?: Filled<NonNullable<Rolling['maintenance']>, 'timeout_s'> & { simulate?: Filled<NonNullable<NonNullable<Rolling['maintenance']>['simulate']>, 'duration_s'> };
};
export function rollingOf(plan: EvacuationPlan): RollSettings {
  const r = plan.rolling ?? {};
  return withDefaults({ ...r, checks: r.checks ?? {}, hooks: r.hooks ?? {} }, 'Rolling') as RollSettings;
}

/** Plan the waves on an inventory (plan output and each wave of a run). */
/**
 * Plan the waves on an inventory (plan output and each wave of a run). done: hosts maintained;
 * out: hosts with another verdict (not rolled again); fenced: those of them the roll fenced
 * (never destinations; a host left out before any wave, for example for its pinned VMs, still is).
 */
export function planRoll(plan: EvacuationPlan, inventory: Inventory, done: string[] = [], out: string[] = [], next = false, fenced: string[] = out): RollPlan {
  const r = rollingOf(plan);
  const settings = settingsOf(plan);
  const gone = new Set(out);
  const closed = new Set(fenced);
  const hosts = inventory.hosts;
  return planWaves({
    hosts, vms: inventory.vms,
    roll: rollHosts(plan, hosts).filter((h) => !gone.has(h)),
    pool: hosts.filter((h) => !closed.has(h.name) && matchesDestinations(plan, h.name, h.labels) && !(h.fence && h.fence.plan !== plan.name)).map((h) => h.name),
    settings, wave: r.wave, maxWave: r.max_wave, ...(r.failure_domain ? { failureDomain: r.failure_domain } : {}), order: r.order, done, next, returnToOrigin: r.return === 'origin',
    pinned: new Set(settings.pinned), pinnedPolicy: r.pinned,
  });
}

/** The evacuation plan of one wave: the roll's plan with these hosts as sources, final hosts preferred. */
function wavePlan(plan: EvacuationPlan, wave: string[], pool: string[], prefer: string[]): EvacuationPlan {
  const { rolling: _r, kind: _k, vms: _v, ...rest } = plan;
  return {
    ...rest,
    kind: 'evacuate',
    sources: wave as [string, ...string[]],
    destinations: { hosts: pool },
    placement: { ...plan.placement, prefer },
  };
}

export interface RollDone {
  exitCode: number;
  report: RollReport;
  paths: { journal: string; json?: string };
}

/** Run (or resume) the roll. Refusals before anything changed throw EvacError. */
export async function roll(loaded: LoadedPlan, open: (o: OpenOptions) => Promise<Driver>, sink: EventSink, opts: RollOptions): Promise<RollDone> {
  const plan = loaded.plan;
  const name = plan.name;
  const r = rollingOf(plan);
  const jpath = rollJournalPath(opts.reportsDir, name);
  mkdirSync(opts.reportsDir, { recursive: true });
  const unlock = lockFile(`${jpath}.lock`, (h) => new EvacError(`the roll '${name}' is being run by pid ${h.pid} on ${h.controller} (since ${h.at})`, 'held', [], `wait for it, or stop it (kill -INT ${h.pid}) and resume it`),
    `another run of the roll '${name}' is starting at the same time`);
  try {
    return await rollOnce(loaded, open, sink, opts, r, jpath);
  } finally {
    unlock();
  }
}

async function rollOnce(loaded: LoadedPlan, open: (o: OpenOptions) => Promise<Driver>, sink: EventSink, opts: RollOptions, r: ReturnType<typeof rollingOf>, jpath: string): Promise<RollDone> {
  const plan = loaded.plan;
  const name = plan.name;
  // Every command run on this machine can start: a missing program is refused before anything moves.
  const local: [string, string[] | undefined][] = [
    ['rolling.maintenance.command', r.maintenance?.on === 'host' ? undefined : r.maintenance?.command],
    ['rolling.checks.command', r.checks.command],
    ...(['before_roll', 'after_roll', 'before_host', 'after_host'] as const).map((k): [string, string[] | undefined] => [`rolling.hooks.${k}`, r.hooks[k]]),
  ];
  const missing = local.filter(([, argv]) => argv && !findProgram(argv[0]));
  if (missing.length > 0) {
    throw new EvacError(`programs not found on this machine: ${missing.map(([field, argv]) => `${field}: ${JSON.stringify(argv![0])}`).join(', ')}`, 'user', [], 'nothing was touched; give a path to an executable file or a program in PATH');
  }
  const before = rollState(readRollJournal(jpath));
  const resumeWith = commandLine('evacuator', 'run', loaded.file, ...(opts.reportsDir === 'reports' ? [] : ['--reports', opts.reportsDir]), '--resume');
  if (before.last && !before.ended) {
    if (stillRunning({ ...before.last, ended: false })) throw new EvacError(`the roll '${name}' is still running (pid ${before.last.pid})`, 'held', [], `wait for it, or stop it (kill -INT ${before.last.pid}) and resume with: ${resumeWith}`);
    if (!opts.resume) throw new EvacError(`the last run of the roll '${name}' (started ${before.last.at}) did not finish; its journal is ${jpath}`, 'held', [], `resume it: ${resumeWith}`);
  }
  // --resume of a roll that ended: nothing to resume (a new roll is a run without --resume); its reports are written again.
  if (opts.resume && before.last && before.ended) {
    const start = before.lines.findLastIndex((l) => l.kind === 'roll-start' && !l.resumed);
    const report = rollReport(before.lines.slice(Math.max(0, start)), loaded, plan.fleet.driver);
    try {
      sink({ kind: 'warning', t: 0, message: `the roll '${name}' already ended (exit ${report.exitCode}, ${report.endedAt}): nothing to resume, nothing was touched; its reports are written again. A new roll of this plan is a run without --resume` });
    } catch {
      // Output never ends a run.
    }
    const paths: { journal: string; json?: string } = { journal: jpath };
    if (opts.writeReports !== false) {
      const { writeRollReports } = await import('./report.ts');
      Object.assign(paths, writeRollReports(opts.reportsDir, report));
    }
    return { exitCode: report.exitCode, report, paths };
  }
  const resuming = opts.resume === true && before.last !== undefined && !before.ended;
  const state = resuming ? before : rollState([]);
  if (resuming && before.lines.find((l) => l.kind === 'roll-start')?.kind === 'roll-start') {
    const first = before.lines.find((l): l is Extract<RollLine, { kind: 'roll-start' }> => l.kind === 'roll-start')!;
    if (first.plan.digest !== loaded.digest && !opts.acceptChangedPlan) {
      throw new EvacError(`${loaded.file} changed since the roll it would resume began`, 'user', [], `restore the plan as it was to resume that roll, or resume with the edited plan on purpose: ${resumeWith} --accept-changed-plan`);
    }
  }
  const settings = settingsOf(plan);
  const inner = await open({ reportsDir: opts.reportsDir, resume: resuming });
  const driver = guardDriver(inner, guardLimits(settings));
  const stop = opts.stop ?? new AbortController().signal;
  // Every migration in flight of every wave listens to it: not a leak.
  setMaxListeners(0, stop, ...(opts.halt ? [opts.halt] : []));
  const journal = new RollJournal(jpath, resuming ? before.lines : [], driver.name !== 'sim');
  const lines: RollLine[] = resuming ? [...before.lines] : [];
  const log = (e: Entry) => {
    const l = journal.write(e);
    lines.push(l);
    try {
      sink({ kind: 'roll', t: l.t, line: l });
    } catch {
      // Output never ends a run.
    }
    return l;
  };
  /** A warning: on the console and in the roll's journal (and so in its report). */
  const say = (message: string) => {
    log({ kind: 'warning', t: driver.clock.now(), message });
    try {
      sink({ kind: 'warning', t: driver.clock.now(), message });
    } catch {
      // Output never ends a run.
    }
  };
  const stage = (detail: string) => {
    try {
      sink({ kind: 'stage', t: driver.clock.now(), stage: 'wave', detail });
    } catch {
      // idem
    }
  };
  const mask = masker(r.secret_env ?? []);
  if (!resuming) {
    for (const n of r.secret_env ?? []) {
      const v = process.env[n];
      if (v === undefined || v === '') say(`secret_env ${n} is not set in this environment: there is nothing of it to mask`);
      else if (v.length < 4) say(`secret_env ${n} is shorter than 4 characters: it is not masked (it would mask ordinary text); use a longer secret`);
    }
  }
  const hookTimeoutMs = r.hooks.timeout_s * 1000;
  const addressOf = (host: string) => plan.fleet.libvirt?.hosts.find((h) => h.name === host)?.address ?? host;
  const hook = async (which: 'before_roll' | 'after_roll' | 'before_host' | 'after_host', env: Record<string, string>, host?: string) => {
    const argv = r.hooks[which];
    if (!argv) return true;
    // A first interrupt lets a hook finish (it may be silencing alerts); a second one stops it.
    const res = await runCommand(argv, { EVAC_PLAN: name, EVAC_HOOK: which, ...env }, hookTimeoutMs, mask, opts.halt);
    log({ kind: 'hook', t: driver.clock.now(), hook: which, ...(host ? { host } : {}), result: res });
    if (!res.ok) say(`hook ${which}${host ? ` of ${host}` : ''} failed: ${res.detail}`);
    return res.ok;
  };
  const pidStart = processStart(process.pid);
  log({ kind: 'roll-start', t: driver.clock.now(), run: randomUUID().slice(0, 8), controller: controller(), pid: process.pid, ...(pidStart ? { pidStart } : {}), plan: { name, file: loaded.file, digest: loaded.digest }, driver: plan.fleet.driver, resumed: resuming });
  let exitCode = 0;
  let error: string | undefined;
  let interrupted = false;
  try {
    const seen = await driver.inventory();
    if (!seen.ok) throw new EvacError(`cannot read the fleet: ${seen.detail}`, 'fleet', [], 'check that the hosts answer, then run again');
    // The hosts the plan declares count too (a host that does not answer is still one to maintain).
    const declared = (declaredFleet(plan)?.hosts ?? []).filter((d) => !seen.inventory.hosts.some((h) => h.name === d.name));
    const all = rollHosts(plan, [...seen.inventory.hosts, ...declared]);
    for (const h of all) {
      if (!seen.inventory.hosts.some((x) => x.name === h) && !seen.inventory.unreachable.some((u) => u.host === h) && !state.status.has(h)) {
        throw new EvacError(`host ${h} to maintain is not in the fleet`, 'user', [], 'check the host names in sources against the fleet');
      }
    }
    // Before anything: hosts that do not answer, hosts another plan holds, a window already closed.
    const open_ = all.filter((h) => !state.status.has(h));
    const silent = open_.filter((h) => !seen.inventory.hosts.some((x) => x.name === h));
    const held = seen.inventory.hosts.filter((x) => open_.includes(x.name) && x.fence && x.fence.plan !== name);
    // A new roll that finds hosts still fenced by an earlier run of this plan: that run stopped (its host failed, or it was
    // interrupted and its journal is elsewhere) and may have left pinned VMs shut off there. Never taken over silently.
    const leftover = resuming ? [] : seen.inventory.hosts.filter((x) => open_.includes(x.name) && x.fence?.plan === name && x.fence.role === 'source');
    if (leftover.length > 0) {
      throw new EvacError(`hosts to maintain are still fenced by an earlier run of this plan, which did not finish them: ${leftover.map((x) => `${x.name} (${describeFence(x.fence!)})`).join(', ')}`, 'held', [],
        `nothing was touched; if that roll's journal is in another reports folder, resume it there (run --resume --reports THAT_FOLDER); otherwise look at those hosts (a roll stopped mid-host may have left pinned VMs shut off, and a failed host needs looking at), then lift the fences: ${commandLine('evacuator', 'clear', loaded.file, ...(opts.reportsDir === 'reports' ? [] : ['--reports', opts.reportsDir]))}`);
    }
    if (settings.windowEnd !== undefined && Date.now() >= settings.windowEnd) {
      throw new EvacError(`the maintenance window closed at ${new Date(settings.windowEnd).toISOString()}: no wave starts`, 'incomplete', [], 'set migration.window_end to the window you have');
    }
    if (r.on_failure === 'stop') {
      if (silent.length > 0) {
        const why = silent.map((h) => `${h} (${seen.inventory.unreachable.find((u) => u.host === h)?.detail ?? 'no answer'})`).join(', ');
        throw new EvacError(`hosts to maintain do not answer: ${why}`, 'fleet', [], 'nothing was touched; bring them back, remove them from the roll, or set rolling.on_failure: skip to maintain the others');
      }
      if (held.length > 0) {
        throw new EvacError(`hosts to maintain are held by other plans: ${held.map((x) => `${x.name} (${describeFence(x.fence!)})`).join(', ')}`, 'held', [], 'nothing was touched; let those plans end (evacuator clear lifts a fence left for a maintenance), or set rolling.on_failure: skip to maintain the others');
      }
    }
    const finished = (h: string) => state.status.has(h) && state.status.get(h)!.status !== 'pending';
    const baseline = new Map(seen.inventory.hosts.map((h) => [h.name, h]));
    const whole = planRoll(plan, seen.inventory, [...state.status].filter(([, s]) => s.status === 'maintained').map(([h]) => h),
      [...state.status].filter(([, s]) => s.status !== 'maintained').map(([h]) => h), false, fencedByRoll());
    for (const x of seen.inventory.hosts.filter((x) => !open_.includes(x.name) && x.fence && x.fence.plan !== name && x.fence.role === 'source')) {
      say(`${x.name} takes no VM: it is fenced by ${describeFence(x.fence!)}`);
    }
    if (!resuming) {
      log({ kind: 'roll-planned', t: driver.clock.now(), waves: whole.waves.map((w) => ({ hosts: w.hosts, moves: w.moves.length, again: w.moves.filter((m) => !m.final).length })), blocked: whole.blocked,
        origins: Object.fromEntries(seen.inventory.vms.map((v) => [v.name, v.host])) });
      for (const b of whole.blocked) {
        if (r.on_failure === 'stop') {
          throw new EvacError(`the roll cannot maintain ${whole.blocked.map((x) => x.host).join(', ')}: ${whole.blocked.map((x) => `${x.host}: ${x.why}`).join(' | ')}`, 'incomplete', [],
            'make room (or allow it: overcommit, max_utilization, destinations), or set rolling.on_failure: skip to maintain the other hosts');
        }
        log({ kind: 'host-done', t: driver.clock.now(), host: b.host, wave: 0, status: 'blocked', why: b.why });
        state.status.set(b.host, { status: 'blocked', why: b.why, wave: 0 });
      }
      for (const h of [...silent, ...held.map((x) => x.name)]) {
        const why = silent.includes(h) ? `it does not answer (${seen.inventory.unreachable.find((u) => u.host === h)?.detail ?? 'no answer'})` : `it is held by ${describeFence(held.find((x) => x.name === h)!.fence!)}`;
        log({ kind: 'host-done', t: driver.clock.now(), host: h, wave: 0, status: 'skipped', why });
        state.status.set(h, { status: 'skipped', why, wave: 0 });
      }
      for (const k of whole.skipped) {
        log({ kind: 'host-done', t: driver.clock.now(), host: k.host, wave: 0, status: 'skipped', why: k.why });
        state.status.set(k.host, { status: 'skipped', why: k.why, wave: 0 });
        say(`${k.host} is not maintained: ${k.why}`);
      }
      if (Object.keys(whole.restarted).length > 0 && !driver.power) {
        throw new EvacError(`the ${driver.name} driver cannot shut down and start a guest, which rolling.pinned: shutdown-restart needs (pinned VMs on ${Object.keys(whole.restarted).join(', ')})`, 'user', [], 'nothing was touched; use rolling.pinned: skip-host');
      }
      const short = waveShortfall(whole, r.wave);
      if (short) throw new EvacError(short, 'incomplete', [], 'use wave: auto (each wave as large as the rules allow), or a smaller wave');
    }
    // From here the roll acts (a hook, a wave): its journal is written.
    journal.commit();
    if (!state.beforeRollDone && !(await hook('before_roll', { EVAC_HOSTS: all.join(' ') }))) {
      if (opts.halt?.aborted) {
        interrupted = true;
      } else {
        throw new EvacError('the before_roll hook failed: nothing of the roll was done', 'incomplete', [], `see its output: evacuator report ${jpath}; fix it and run again`);
      }
    }
    let waveNo = state.waves;
    let stopped = false;
    const learnedMs: number[] = [];
    while (!stopped) {
      if (stop.aborted) {
        interrupted = true;
        break;
      }
      // The wave in progress (a resume), else the next one planned on the fleet as it is now.
      let wave: string[];
      let resumingWave = false;
      if (state.open) {
        wave = state.open.hosts;
        waveNo = state.open.wave;
        resumingWave = true;
      } else {
        const inv = await driver.inventory();
        if (!inv.ok) throw new EvacError(`cannot read the fleet: ${inv.detail}`, 'fleet', [], 'check that the hosts answer, then resume');
        // A host to maintain that stopped answering (it crashed) is said, and the policy applies.
        for (const u of inv.inventory.unreachable.filter((x) => all.includes(x.host) && !state.status.has(x.host))) {
          const why = `it does not answer (${u.detail})`;
          log({ kind: 'host-done', t: driver.clock.now(), host: u.host, wave: 0, status: r.on_failure === 'skip' ? 'skipped' : 'failed', why });
          state.status.set(u.host, { status: r.on_failure === 'skip' ? 'skipped' : 'failed', why, wave: 0 });
          say(`${u.host} is not maintained: ${why}`);
          if (r.on_failure === 'stop') stopped = true;
        }
        if (stopped) break;
        const next = planRoll(plan, inv.inventory, [...state.status].filter(([, s]) => s.status === 'maintained').map(([h]) => h), [...state.status].filter(([, s]) => s.status !== 'maintained').map(([h]) => h), true, fencedByRoll());
        for (const k of next.skipped.filter((x) => !finished(x.host))) {
          log({ kind: 'host-done', t: driver.clock.now(), host: k.host, wave: 0, status: 'skipped', why: k.why });
          state.status.set(k.host, { status: 'skipped', why: k.why, wave: 0 });
          say(`${k.host} is not maintained: ${k.why}`);
        }
        for (const b of next.blocked.filter((x) => !finished(x.host))) {
          log({ kind: 'host-done', t: driver.clock.now(), host: b.host, wave: 0, status: 'blocked', why: b.why });
          state.status.set(b.host, { status: 'blocked', why: b.why, wave: 0 });
          say(`${b.host} cannot be emptied now: ${b.why}`);
          if (r.on_failure === 'stop') stopped = true;
        }
        if (stopped || next.waves.length === 0) break;
        wave = next.waves[0].hosts;
        // The window: no wave starts that cannot end before it closes (estimates learned from earlier hosts).
        if (settings.windowEnd !== undefined && learnedMs.length > 0) {
          const need = Math.max(...learnedMs);
          if (Date.now() + need > settings.windowEnd) {
            say(`the next wave (${wave.join(', ')}) would take about ${Math.round(need / 1000)} s, past the window's end: stopping here`);
            exitCode = 3;
            break;
          }
        }
        waveNo++;
        const started = log({ kind: 'wave-start', t: driver.clock.now(), wave: waveNo, hosts: wave });
        state.open = { wave: waveNo, hosts: wave, at: started.at };
      }
      stage(`wave ${waveNo}: ${wave.join(', ')}`);
      const waveT0 = Date.now();
      // Evacuation (resumed from its own journal when it was in progress).
      let evacuated = state.open!.evacuated;
      if (!evacuated) {
        for (const h of wave) {
          if (resumingWave && state.steps.has(h)) continue;
          if (!(await hook('before_host', { EVAC_HOST: h, EVAC_HOST_ADDRESS: addressOf(h), EVAC_WAVE: String(waveNo) }, h))) {
            // Stopped by a second interrupt: no verdict; the resume runs the hook again.
            if (opts.halt?.aborted) {
              interrupted = true;
              break;
            }
            // Nothing of this host changed yet.
            failHost(h, 'its before_host hook failed', state.open?.wave ?? 0, true);
          }
        }
        if (interrupted) break;
        const live = wave.filter((h) => !state.status.has(h));
        const inv = await driver.inventory();
        if (!inv.ok) throw new EvacError(`cannot read the fleet: ${inv.detail}`, 'fleet', [], 'check that the hosts answer, then resume');
        const maintained = new Set([...state.status].filter(([, s]) => s.status === 'maintained').map(([h]) => h));
        const out = new Set(fencedByRoll());
        const rolled = new Set(all);
        const pool = inv.inventory.hosts.filter((h) => !wave.includes(h.name) && !out.has(h.name) && matchesDestinations(plan, h.name, h.labels) && !(h.fence && h.fence.plan !== name)).map((h) => h.name);
        const prefer = pool.filter((h) => maintained.has(h) || !rolled.has(h));
        let ev: Evacuation | undefined;
        const dir = waveDir(opts.reportsDir, name, waveNo);
        // The wave's evacuation as its own journal has it since the wave began: a run that ended
        // (the roll was killed after it) is not run again; one cut short is resumed.
        const since = runsSince(readJournal(journalPath(dir, name)), state.open!.at);
        const last = since.at(-1);
        let endLine: Pick<RunEndLine, 'exitCode' | 'proofs'> | undefined = last && last.ended && last.end!.exitCode !== 130 && !last.end!.interrupted ? last.end : undefined;
        if (live.length > 0 && !endLine) {
          const wp = wavePlan(plan, live, pool, prefer);
          try {
            ev = await evacuate({ ...loaded, plan: wp }, driver, sink, { reportsDir: dir, ...(last && !last.ended ? { resume: true, acceptChangedPlan: true } : {}), stop, ...(opts.halt ? { halt: opts.halt } : {}) });
          } catch (e) {
            if (e instanceof EvacError && e.source === 'interrupted') {
              interrupted = true;
              break;
            }
            throw e;
          }
          // Interrupted mid-evacuation: the wave stays open; the resume goes on from its journal.
          if (ev.result.interrupted) {
            interrupted = true;
            break;
          }
          endLine = { exitCode: ev.exitCode, proofs: ev.result.proofs };
        }
        const proofs = endLine?.proofs ?? [];
        evacuated = log({
          kind: 'wave-evacuated', t: driver.clock.now(), wave: waveNo, exitCode: endLine?.exitCode ?? 0,
          // A wave with no host left to empty (its before_host hooks failed) has no proof: nothing to maintain.
          empty: proofs.filter((p) => p.empty).map((p) => p.host),
          notEmpty: proofs.filter((p) => !p.empty).map((p) => ({ host: p.host, left: p.left.map((l) => l.vm) })),
          // Every migration the wave's journal says ended well since the wave began, across a kill and its resume.
          moves: movesSince(readJournal(journalPath(dir, name)), state.open!.at),
          ...(ev?.paths.json ? { report: ev.paths.json } : {}),
        }) as Extract<RollLine, { kind: 'wave-evacuated' }>;
        state.open!.evacuated = evacuated;
      }
      // shutdown-restart: a host that holds only pinned VMs is maintained with them shut down.
      const pinnedOnly = (n: { left: string[] }) => r.pinned === 'shutdown-restart' && n.left.every((v) => settings.pinned.includes(v));
      for (const n of evacuated.notEmpty) if (!state.status.has(n.host) && !pinnedOnly(n)) failHost(n.host, `its evacuation left ${n.left.join(', ')} on it: a host that still holds VMs is never maintained`);
      // Maintenance and checks, the wave's hosts at once.
      const ready = wave.filter((h) => !state.status.has(h) && (evacuated!.empty.includes(h) || evacuated!.notEmpty.some((n) => n.host === h && pinnedOnly(n))));
      await Promise.all(ready.map((h) => maintainHost(h, waveNo, baseline.get(h))));
      // Interrupted during the steps: the wave stays open (its hosts without a verdict are done again on resume).
      if (stop.aborted && wave.some((h) => !state.status.has(h))) {
        interrupted = true;
        break;
      }
      for (const h of wave) {
        const s = state.status.get(h);
        if (s && s.status !== 'maintained' && r.on_failure === 'stop') stopped = true;
      }
      // return: origin, as peers do: a host back in service gets its own VMs back before the next wave.
      const home = wave.filter((h) => state.status.get(h)?.status === 'maintained');
      if (r.return === 'origin' && home.length > 0 && !interrupted) {
        const back = await returnHome(home, waveNo);
        if (back === 130) interrupted = true;
        else if (back !== 0 && exitCode === 0) exitCode = back;
      }
      learnedMs.push(Date.now() - waveT0);
      log({ kind: 'wave-end', t: driver.clock.now(), wave: waveNo });
      state.open = undefined;
      state.steps = new Map();
      if (interrupted) break;
    }
    if (!interrupted) await hook('after_roll', { EVAC_HOSTS: all.join(' ') });
    const notDone = all.filter((h) => state.status.get(h)?.status !== 'maintained');
    if (interrupted) exitCode = 130;
    else if (notDone.length > 0 && exitCode === 0) exitCode = 3;
    // Pinned VMs the roll shut down and did not start again (an interrupt cut the host short): said loudly.
    sayPinnedDown();
  } catch (e) {
    exitCode = e instanceof EvacError ? e.exitCode : 1;
    error = messageOf(e);
    // Pinned VMs shut down when the roll broke off: started again where their host answers, and named.
    for (const h of [...state.pinnedDown.keys()]) await pinnedStart(h).catch(() => '');
    sayPinnedDown();
    // A roll that ran its before_roll and ends on an error still runs after_roll (an alert silence is lifted).
    if (journal.committed && lines.some((l) => l.kind === 'hook' && l.hook === 'before_roll')) await hook('after_roll', { EVAC_HOSTS: rollHosts(plan, []).join(' ') }).catch(() => false);
    // A roll refused before it did anything leaves no journal (nothing to resume).
    if (journal.committed) log({ kind: 'roll-end', t: driver.clock.now(), exitCode, error, interrupted: false });
    journal.close();
    await driver.close();
    throw e;
  }
  journal.commit();
  log({ kind: 'roll-end', t: driver.clock.now(), exitCode, interrupted, ...(error ? { error } : {}) });
  journal.close();
  await driver.close();
  const report = rollReport(lines, loaded, plan.fleet.driver);
  const paths: { journal: string; json?: string } = { journal: jpath };
  if (opts.writeReports !== false) {
    const { writeRollReports } = await import('./report.ts');
    Object.assign(paths, writeRollReports(opts.reportsDir, report));
  }
  return { exitCode, report, paths };

  /** A warning naming every pinned VM the roll shut down and has not started again. */
  function sayPinnedDown(): void {
    const off = [...state.pinnedDown].filter(([, vms]) => vms.length > 0);
    if (off.length === 0) return;
    say(`pinned VMs are SHUT OFF, shut down by this roll for their host's maintenance: ${off.map(([h, vms]) => `${vms.join(', ')} (${h})`).join('; ')}; ${interrupted ? `resume the roll (${resumeWith}): it checks their host and starts them` : 'start them on their host (virsh start / openstack server start) once it is healthy'}`);
  }

  /** Hosts the roll took out of service and did not put back (a verdict in a wave); those left out before any wave still take VMs. */
  function fencedByRoll(): string[] {
    return [...state.status].filter(([, s]) => s.status !== 'maintained' && s.wave > 0).map(([h]) => h);
  }

  /** A host not maintained; untouched: nothing of it changed yet (no fence to keep). */
  function failHost(h: string, why: string, wave = state.open?.wave ?? 0, untouched = false) {
    log({ kind: 'host-done', t: driver.clock.now(), host: h, wave, status: r.on_failure === 'skip' ? 'skipped' : 'failed', why });
    state.status.set(h, { status: r.on_failure === 'skip' ? 'skipped' : 'failed', why, wave });
    say(`${h} is not maintained: ${why}; ${untouched ? 'nothing of it was changed' : 'it stays fenced'}${r.on_failure === 'stop' ? ' and the roll stops after this wave' : ''}`);
  }

  async function maintainHost(h: string, wave: number, was: Host | undefined): Promise<void> {
    const last = state.steps.get(h);
    const env = { EVAC_HOST: h, EVAC_HOST_ADDRESS: addressOf(h), EVAC_PLAN: name, EVAC_WAVE: String(wave) };
    // A step that ended ok is not run again; one that started and did not end is (steps are idempotent).
    const maintainedOk = last !== undefined && (last.step === 'check' || (last.kind === 'step-end' && last.ok));
    if (!maintainedOk) {
      // A step the killed roll left running (its own process group survives the roll) is waited for, never run twice at once.
      const orphan = state.pids.get(h);
      if (orphan && stillRunning({ controller: controller(), pid: orphan.pid, ...(orphan.pidStart ? { pidStart: orphan.pidStart } : {}), ended: false })) {
        say(`${h}: the maintenance step the killed roll started (pid ${orphan.pid}) still runs: waiting for it to end before running it again`);
        const until = Date.now() + r.maintenance!.timeout_s * 1000;
        while (Date.now() < until && stillRunning({ controller: controller(), pid: orphan.pid, ...(orphan.pidStart ? { pidStart: orphan.pidStart } : {}), ended: false })) {
          if (opts.halt?.aborted) return;
          await new Promise((res) => setTimeout(res, 500));
        }
        if (stillRunning({ controller: controller(), pid: orphan.pid, ...(orphan.pidStart ? { pidStart: orphan.pidStart } : {}), ended: false })) {
          return failHost(h, `the maintenance step the killed roll started (pid ${orphan.pid}) still runs after its timeout; it was not run again`, wave);
        }
      }
      const stopped_ = await pinnedStop(h);
      if (stopped_) return failHost(h, stopped_, wave);
      log({ kind: 'step-start', t: driver.clock.now(), host: h, step: 'maintain' });
      const res = await maintainStep(h, env);
      // Stopped by a second interrupt: no verdict on the host; the resume runs the step again.
      if (!res.ok && opts.halt?.aborted) return;
      log({ kind: 'step-end', t: driver.clock.now(), host: h, step: 'maintain', ok: res.ok, detail: res.detail, ...(res.output ? { output: res.output } : {}), durationMs: res.durationMs });
      if (!res.ok) return failHost(h, `its maintenance step failed: ${res.detail}${await pinnedStart(h)}`, wave);
    }
    log({ kind: 'step-start', t: driver.clock.now(), host: h, step: 'check' });
    const t0 = Date.now();
    const c = await checkHost(h, was, env);
    // Interrupted while waiting for the host: no verdict; a resume checks again.
    if (c.interrupted) return;
    log({ kind: 'step-end', t: driver.clock.now(), host: h, step: 'check', ok: c.ok, detail: c.detail, durationMs: Date.now() - t0 });
    if (!c.ok) return failHost(h, `its checks did not pass: ${c.detail}${await pinnedStart(h)}`, wave);
    const notUp = await pinnedStart(h);
    if (notUp) return failHost(h, `it passed its checks, but${notUp.replace(/^;/, '')}`, wave);
    const lifted = await driver.fence(h, null, true);
    if (!lifted.ok) return failHost(h, `its fence could not be lifted: ${lifted.detail}`, wave);
    // Stopped by a second interrupt: no verdict; the resume checks the host and runs after_host again (it may lift a Ceph noout, turn HA back on).
    if (!(await hook('after_host', env, h)) && opts.halt?.aborted) return;
    log({ kind: 'host-done', t: driver.clock.now(), host: h, wave, status: 'maintained', why: '' });
    state.status.set(h, { status: 'maintained', why: '', wave });
  }

  /**
   * shutdown-restart: shut the host's running pinned VMs down where they are, just before its step.
   * The intent is journaled first (a killed roll's resume starts them again). Undefined when all
   * are off; else why not, with the ones shut down started again (the host is not maintained).
   */
  async function pinnedStop(h: string): Promise<string | undefined> {
    if (r.pinned !== 'shutdown-restart' || settings.pinned.length === 0) return undefined;
    const inv = await driver.inventory();
    if (!inv.ok) return `its pinned VMs could not be looked at: ${inv.detail}`;
    const vms = inv.inventory.vms.filter((v) => v.host === h && settings.pinned.includes(v.name) && v.state === 'running');
    // One that became paused, crashed or suspended since the roll was planned: the host is not maintained.
    const odd = inv.inventory.vms.filter((v) => v.host === h && settings.pinned.includes(v.name) && v.state !== 'running' && v.state !== 'shutoff');
    if (odd.length > 0) return `pinned VMs on it cannot be shut down cleanly and started again as they are: ${odd.map((v) => `${v.name} is ${v.state}`).join(', ')}`;
    if (vms.length === 0) return undefined;
    log({ kind: 'pinned-stop', t: driver.clock.now(), host: h, vms: vms.map((v) => v.name) });
    state.pinnedDown.set(h, [...new Set([...state.pinnedDown.get(h) ?? [], ...vms.map((v) => v.name)])]);
    stage(`${h}: shutting down pinned ${vms.map((v) => v.name).join(', ')}`);
    const results: { vm: string; ok: boolean; detail: string; off?: boolean }[] = await Promise.all(vms.map(async (vm) => {
      const got = await driver.power!(vm, 'off', { timeoutS: settings.cold.shutdownTimeoutS, forceOff: settings.cold.forceOff });
      return { vm: vm.name, ok: got.ok, detail: got.ok ? 'shut down' : got.detail };
    }));
    const bad = results.filter((x) => !x.ok);
    if (bad.length > 0) {
      // Those that did not shut down are left as they are: only the ones off now are started again (unknown counts as off).
      const now = await driver.inventory();
      const off = new Set(now.ok ? now.inventory.vms.filter((v) => v.host === h && v.state === 'shutoff').map((v) => v.name) : vms.map((v) => v.name));
      for (const b of bad) b.off = off.has(b.vm);
    }
    log({ kind: 'pinned-done', t: driver.clock.now(), host: h, action: 'stop', results });
    state.pinnedDown.set(h, (state.pinnedDown.get(h) ?? []).filter((v) => !results.some((x) => x.vm === v && !x.ok && !x.off)));
    if (bad.length === 0) return undefined;
    return `pinned VMs did not shut down (${bad.map((x) => `${x.vm}: ${x.detail}`).join('; ')}), so its step was not run${await pinnedStart(h)}`;
  }

  /** Start the host's pinned VMs the roll shut down; '' when all run (or there were none), else '; ' and what is still off. */
  async function pinnedStart(h: string): Promise<string> {
    const names = state.pinnedDown.get(h) ?? [];
    if (names.length === 0 || !driver.power) return '';
    const inv = await driver.inventory();
    const results = await Promise.all(names.map(async (n) => {
      const vm = inv.ok ? inv.inventory.vms.find((v) => v.name === n && v.host === h) : undefined;
      if (!vm) return { vm: n, ok: false, detail: !inv.ok ? `the fleet could not be read: ${inv.detail}` : inv.inventory.unreachable.some((u) => u.host === h) ? `${h} does not answer` : `not found on ${h}` };
      const got = await driver.power!(vm, 'on', { timeoutS: settings.cold.shutdownTimeoutS, forceOff: false });
      return { vm: n, ok: got.ok, detail: got.ok ? 'started' : got.detail };
    }));
    log({ kind: 'pinned-done', t: driver.clock.now(), host: h, action: 'start', results });
    const off = results.filter((x) => !x.ok);
    state.pinnedDown.set(h, off.map((x) => x.vm));
    if (off.length === 0) return '';
    say(`pinned VMs on ${h} are not running again: ${off.map((x) => `${x.vm} (${x.detail})`).join('; ')}; start them by hand (virsh start / openstack server start)`);
    return `; pinned VMs not started again: ${off.map((x) => `${x.vm} (${x.detail})`).join('; ')}`;
  }

  async function maintainStep(h: string, env: Record<string, string>): Promise<CommandResult> {
    const m = r.maintenance!;
    const timeoutMs = m.timeout_s * 1000;
    if (m.simulate) {
      const t0 = driver.clock.now();
      const got = driver.maintain
        ? await driver.maintain(h, { durationMs: m.simulate.duration_s * 1000, ...(m.simulate.hypervisor_version ? { version: m.simulate.hypervisor_version } : {}), fail: (m.simulate.fail ?? []).includes(h) })
        : { ok: false as const, detail: `the ${driver.name} driver has no simulated maintenance` };
      return { ok: got.ok, code: got.ok ? 0 : null, detail: got.ok ? '' : (got as { detail: string }).detail, output: '', durationMs: driver.clock.now() - t0 };
    }
    if (m.on === 'host') return onHost(h, m.command!, env, timeoutMs);
    // A first interrupt lets the step finish (a host half patched is worse); a second one stops it.
    return runCommand(m.command!, env, timeoutMs, mask, opts.halt, (pid) => {
      const pidStart = processStart(pid);
      log({ kind: 'step-pid', t: driver.clock.now(), host: h, pid, ...(pidStart ? { pidStart } : {}) });
    });
  }

  /** The step on the host itself over the driver's SSH: timeout(1) bounds it there, env(1) gives it the environment; every argument is quoted. */
  async function onHost(h: string, argv: string[], env: Record<string, string>, timeoutMs: number): Promise<CommandResult> {
    const t0 = Date.now();
    if (!driver.exec) return { ok: false, code: null, detail: `the ${driver.name} driver cannot run commands on a host`, output: '', durationMs: 0 };
    const secs = String(Math.ceil(timeoutMs / 1000));
    const wrapped = ['timeout', '--kill-after=10', secs, 'env', '--', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
    try {
      const r = await driver.exec(h, wrapped);
      const output = keptOutput(r.stdout, r.stderr, mask);
      // The session ending with no exit status: the host went away under its own step (a reboot): no verdict here, the checks decide.
      if (r.code === -1) return { ok: true, code: null, detail: '', output: `${output}${output ? '\n' : ''}(the SSH session to ${h} ended under the step, as a reboot ends it: the checks decide)`, durationMs: Date.now() - t0 };
      const detail = r.code === 0 ? '' : r.code === 124 || r.code === 137 ? `killed on ${h} after its timeout of ${secs} s` : `exit ${r.code} on ${h}`;
      return { ok: r.code === 0, code: r.code, detail, output, durationMs: Date.now() - t0 };
    } catch (e) {
      // Not started (no connection, no channel): the step did not run.
      return { ok: false, code: null, detail: mask(`it could not be started on ${h}: ${messageOf(e)}`), output: '', durationMs: Date.now() - t0 };
    }
  }

  /** Wait until the host answers and passes: capacity and CPU as before, the expected version, the check command. */
  async function checkHost(h: string, was: Host | undefined, env: Record<string, string>): Promise<{ ok: boolean; detail: string; interrupted?: boolean }> {
    const c = r.checks;
    const timeoutMs = c.timeout_s * 1000;
    const every = c.interval_s * 1000;
    const until = driver.clock.now() + timeoutMs;
    let why = 'not looked at yet';
    // A host whose pinned VMs this roll shut down is checked (and they started) through a first interrupt; a second stops it.
    const cut = (state.pinnedDown.get(h) ?? []).length > 0 ? opts.halt : stop;
    for (;;) {
      if (cut?.aborted) return { ok: false, interrupted: true, detail: `interrupted while waiting (${why})` };
      const got = await driver.inventory();
      const now = got.ok ? got.inventory.hosts.find((x) => x.name === h) : undefined;
      if (!got.ok) why = `the fleet could not be read: ${got.detail}`;
      else if (!now) why = `${h} does not answer${got.inventory.unreachable.find((u) => u.host === h) ? ` (${got.inventory.unreachable.find((u) => u.host === h)!.detail})` : ''}`;
      else if (was && JSON.stringify(now.capacity) !== JSON.stringify(was.capacity)) why = `its capacity changed: ${JSON.stringify(now.capacity)}, was ${JSON.stringify(was.capacity)}`;
      else if (was && now.cpuModel !== was.cpuModel) why = `its CPU model is ${now.cpuModel}, was ${was.cpuModel}`;
      else if (c.hypervisor_version && now.hypervisor.version !== c.hypervisor_version) why = `its hypervisor reports ${now.hypervisor.version}, expected ${c.hypervisor_version}`;
      else if (c.command) {
        const res = await runCommand(c.command, env, timeoutMs, mask, opts.halt);
        if (res.ok) return { ok: true, detail: `${h} answers and passes its checks` };
        why = `its check command failed: ${res.detail}${res.output ? `: ${res.output.split('\n').slice(-3).join(' / ')}` : ''}`;
      } else return { ok: true, detail: `${h} answers${c.hypervisor_version ? ` with ${c.hypervisor_version}` : ''}, capacity and CPU as before` };
      if (driver.clock.now() + every > until) return { ok: false, detail: `after ${Math.round(timeoutMs / 1000)} s: ${why}` };
      await driver.clock.sleep(every, cut);
    }
  }

  /** return: origin: the VMs that started on these hosts (now back in service) go back to them from wherever they are. */
  async function returnHome(hosts: string[], wave: number): Promise<number> {
    const home = new Set(hosts);
    const vms = rollVms(lines).filter((v) => home.has(v.origin) && v.host !== v.origin);
    if (vms.length === 0) return 0;
    stage(`wave ${wave}: ${vms.length} VM(s) back to ${hosts.join(', ')}`);
    const { rolling: _r, kind: _k, ...rest } = plan;
    const back: EvacuationPlan = {
      ...rest, kind: 'evacuate',
      sources: [...new Set(vms.map((v) => v.host))].sort() as [string, ...string[]],
      // Exact names: a VM named like a pattern must not pull in others.
      vms: vms.map((v) => exactPattern(v.vm)) as [string, ...string[]],
      destinations: { hosts: [...home].sort() },
      placement: { ...plan.placement, assign: Object.fromEntries(vms.map((v) => [v.vm, v.origin])) },
    };
    const dir = join(opts.reportsDir, `${name}.roll`, `return-${wave}`);
    const c = chainOf(readJournal(journalPath(dir, name)));
    let ev: Evacuation;
    try {
      ev = await evacuate({ ...loaded, plan: back }, driver, sink, { reportsDir: dir, ...(c && !c.runs.at(-1)!.ended ? { resume: true, acceptChangedPlan: true } : {}), stop, ...(opts.halt ? { halt: opts.halt } : {}) });
    } catch (e) {
      if (e instanceof EvacError && e.source === 'interrupted') return 130;
      throw e;
    }
    log({
      kind: 'wave-evacuated', t: driver.clock.now(), wave: -wave, exitCode: ev.exitCode, empty: [], notEmpty: [],
      moves: ev.report.vms.filter((v) => v.status === 'moved').map((v) => ({ vm: v.vm, from: v.source, to: v.host!, bytes: v.bytes, method: v.method })),
      ...(ev.paths.json ? { report: ev.paths.json } : {}),
    });
    log({ kind: 'return', t: driver.clock.now(), moved: ev.report.totals.moved, exitCode: ev.exitCode });
    const stayed = ev.report.vms.filter((v) => v.status !== 'moved');
    if (stayed.length > 0) say(`${stayed.length} VM(s) not back on ${hosts.join(', ')}: ${stayed.slice(0, 10).map((v) => `${v.vm} (${v.reason})`).join('; ')}${stayed.length > 10 ? '; …' : ''}`);
    if (ev.result.interrupted) return 130;
    return ev.exitCode;
  }
}

type JLine = ReturnType<typeof readJournal>[number];
type RunEndLine = Extract<JLine, { kind: 'run-end' }>;

/** The runs of a wave's journal that started at or after `since` (ISO), each with its end line if it has one. */
function runsSince(lines: JLine[], since: string): { start: number; ended: boolean; end?: RunEndLine }[] {
  const runs: { start: number; ended: boolean; end?: RunEndLine }[] = [];
  lines.forEach((l, i) => {
    if (l.kind === 'run-start' && l.at >= since) runs.push({ start: i, ended: false });
    else if (l.kind === 'run-end' && runs.length > 0 && !runs.at(-1)!.ended) Object.assign(runs.at(-1)!, { ended: true, end: l });
  });
  return runs;
}

/** The migrations that ended well in a wave's journal since `since`. */
function movesSince(lines: JLine[], since: string): { vm: string; from: string; to: string; bytes: number; method: string }[] {
  const first = lines.findIndex((l) => l.kind === 'run-start' && l.at >= since);
  if (first < 0) return [];
  return lines.slice(first).filter((l): l is Extract<JLine, { kind: 'move-end' }> => l.kind === 'move-end' && l.outcome === 'ok')
    .map((l) => ({ vm: l.vm, from: l.source, to: l.destination, bytes: l.bytes, method: l.method }));
}

/** Each VM's moves over the roll, from its journal. */
export function rollVms(lines: RollLine[]): RollVm[] {
  const vms = new Map<string, RollVm>();
  // Where each VM was when the roll began (the first roll-planned line), else where its first move left from.
  const origins = lines.find((l): l is Extract<RollLine, { kind: 'roll-planned' }> => l.kind === 'roll-planned')?.origins ?? {};
  for (const l of lines) {
    if (l.kind !== 'wave-evacuated') continue;
    for (const m of l.moves) {
      const v = vms.get(m.vm) ?? { vm: m.vm, origin: origins[m.vm] ?? m.from, host: m.from, moves: [] };
      v.moves.push({ wave: l.wave, from: m.from, to: m.to, method: m.method, bytes: m.bytes });
      v.host = m.to;
      vms.set(m.vm, v);
    }
  }
  return [...vms.values()].sort((a, b) => a.vm.localeCompare(b.vm));
}

/** The roll's report from its journal (a killed roll's too). */
export function rollReport(lines: RollLine[], loaded: Pick<LoadedPlan, 'file' | 'digest'> & { plan: Pick<EvacuationPlan, 'name'> }, driver: string): RollReport {
  const first = lines.find((l) => l.kind === 'roll-start');
  const end = [...lines].reverse().find((l): l is Extract<RollLine, { kind: 'roll-end' }> => l.kind === 'roll-end');
  const planned = [...lines].reverse().find((l): l is Extract<RollLine, { kind: 'roll-planned' }> => l.kind === 'roll-planned');
  const t0 = first?.t ?? 0;
  const sec = (t: number) => Math.round((t - t0) / 100) / 10;
  const hosts = new Map<string, RollHost>();
  const hostOf = (h: string) => {
    let x = hosts.get(h);
    if (!x) hosts.set(h, (x = { host: h, wave: null, status: 'pending', why: '' }));
    return x;
  };
  for (const w of planned?.waves ?? []) for (const h of w.hosts) hostOf(h);
  for (const b of planned?.blocked ?? []) hostOf(b.host);
  const waves: RollReport['waves'] = [];
  const waveStart = new Map<number, number>();
  const steps = new Map<string, number>();
  for (const l of lines) {
    if (l.kind === 'wave-start') {
      waveStart.set(l.wave, l.t);
      for (const h of l.hosts) hostOf(h).wave = l.wave;
      waves.push({ wave: l.wave, hosts: l.hosts, exitCode: null, moves: 0, bytes: 0 });
    } else if (l.kind === 'wave-evacuated' && l.wave > 0) {
      const w = waves.find((x) => x.wave === l.wave);
      if (w) Object.assign(w, { exitCode: l.exitCode, moves: l.moves.length, bytes: l.moves.reduce((a, m) => a + m.bytes, 0), ...(l.report ? { report: l.report } : {}) });
      for (const h of w?.hosts ?? []) hostOf(h).evacuated = { startS: sec(waveStart.get(l.wave) ?? l.t), endS: sec(l.t) };
    } else if (l.kind === 'step-start') steps.set(`${l.host}:${l.step}`, l.t);
    else if (l.kind === 'step-end') {
      const startS = sec(steps.get(`${l.host}:${l.step}`) ?? l.t);
      if (l.step === 'maintain') hostOf(l.host).maintained = { startS, endS: sec(l.t), ok: l.ok, ...(l.output ? { output: l.output } : {}) };
      else hostOf(l.host).checked = { startS, endS: sec(l.t), ok: l.ok, detail: l.detail };
    } else if (l.kind === 'host-done') {
      const x = hostOf(l.host);
      x.status = l.status;
      x.why = l.why;
      if (l.status === 'maintained') x.inServiceS = sec(l.t);
    } else if (l.kind === 'pinned-stop') {
      const x = hostOf(l.host);
      x.pinned ??= [];
      for (const vm of l.vms) if (!x.pinned.some((p) => p.vm === vm)) x.pinned.push({ vm, stoppedS: sec(l.t), running: true, detail: 'being shut down' });
    } else if (l.kind === 'pinned-done') {
      for (const res of l.results) {
        const p = hostOf(l.host).pinned?.find((x) => x.vm === res.vm);
        if (!p) continue;
        if (l.action === 'start') {
          p.running = res.ok;
          if (res.ok) p.startedS = sec(l.t);
        } else if (!res.ok && !res.off) {
          // Never shut down: not one of the host's restarted VMs (its why says so).
          const list = hostOf(l.host).pinned!;
          list.splice(list.indexOf(p), 1);
          continue;
        } else p.running = false;
        p.detail = res.detail;
      }
    }
  }
  const vms = rollVms(lines);
  const all = vms.flatMap((v) => v.moves);
  const returned = lines.filter((l) => l.kind === 'return').reduce((a, l) => a + (l.kind === 'return' ? l.moved : 0), 0);
  const hooks = lines.filter((l): l is Extract<RollLine, { kind: 'hook' }> => l.kind === 'hook')
    .map((l) => ({ hook: l.hook, ...(l.host ? { host: l.host } : {}), ok: l.result.ok, detail: l.result.detail, output: l.result.output }));
  const list = [...hosts.values()];
  const count = (st: HostStatus) => list.filter((h) => h.status === st).length;
  const exitCode = end?.exitCode ?? 130;
  return {
    version: 1, kind: 'rolling',
    plan: { name: loaded.plan.name, file: loaded.file, digest: loaded.digest },
    driver,
    startedAt: first?.at ?? '',
    endedAt: end?.at ?? lines.at(-1)?.at ?? '',
    result: !end ? 'interrupted' : end.error ? 'refused' : end.interrupted ? 'interrupted' : exitCode === 0 ? 'complete' : 'incomplete',
    exitCode,
    ...(end?.error ? { error: end.error } : {}),
    waves, hosts: list, vms, hooks, warnings: lines.filter((l): l is Extract<RollLine, { kind: 'warning' }> => l.kind === 'warning').map((l) => l.message),
    totals: {
      hosts: list.length, maintained: count('maintained'), failed: count('failed'), skipped: count('skipped'), blocked: count('blocked'),
      migrations: all.length, bytes: all.reduce((a, m) => a + m.bytes, 0),
      vmsMoved: vms.length, movedAgain: all.length - vms.length - returned,
      moveBack: { migrations: 2 * vms.length, bytes: 2 * vms.reduce((a, v) => a + (v.moves[0]?.bytes ?? 0), 0) },
      returned,
    },
  };
}
