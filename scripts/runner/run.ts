/**
 * The run: moves dispatched under the named limits, longest first; a VM whose destination
 * fails is placed again among the destinations still up; at the end every source is looked at
 * for domains in any state.
 */
import { messageOf } from '../errors.ts';
import type { Driver } from '../fleet/driver.ts';
import type { Snapshot } from '../fleet/discover.ts';
import { demandOf, usedByHost, type Inventory, type Resources, type Vm } from '../fleet/types.ts';
import { utilizationOf } from '../placement/rebalance.ts';
import type { EventSink, RebalanceJudgement } from '../events.ts';
import { selected, type Settings } from '../plan/settings.ts';
import { ledgerFor } from '../placement/place.ts';
import { chooseHost } from '../placement/choose.ts';
import type { Attempt, HostProof, Move, VmResult } from '../model.ts';
import type { Blueprint } from '../preflight/blueprint.ts';
import { deadlineMs } from './attempt.ts';
import { climb } from './ladder.ts';
import { Limits, resolveLimits, type LimitSettings } from './limits.ts';

export interface RunResult {
  vms: VmResult[];
  proofs: HostProof[];
  /** A rebalance: whether the hosts ended under the target, judged from the fleet after the run. */
  rebalance?: RebalanceJudgement;
  /** The fleet after the run, as the final check saw it (null when it could not be read). */
  after: Inventory | null;
  interrupted: boolean;
  startedAt: number;
  endedAt: number;
}

/** Most destination changes for one VM. */
const MAX_REPLACEMENTS = 2;

export interface RunOptions {
  /** Aborted on the first interrupt: no new migrations start. */
  stop: AbortSignal;
  /** Aborted on the second: live migrations in flight are cancelled. */
  halt?: AbortSignal;
  /** Milliseconds left in the maintenance window when the run starts (from settings.windowEnd). */
  windowLeftMs?: number;
  /** A resumed run: attempts the earlier processes made per VM still to move, and the final results of VMs they finished. */
  history?: Map<string, Attempt[]>;
  carried?: VmResult[];
  /** When the evacuation began on the driver's clock (a resumed run began before this process). */
  startedAt?: number;
  /** The concurrency limits as numbers (default: the settings' resolved on these hosts and this driver). */
  limits?: LimitSettings;
}

export async function runBlueprint(bp: Blueprint, snap: Snapshot, settings: Settings, driver: Driver, emit: EventSink, opts: RunOptions): Promise<RunResult> {
  const { stop, halt, windowLeftMs } = opts;
  const startedAt = opts.startedAt ?? driver.clock.now();
  const windowCloses = windowLeftMs === undefined ? Infinity : driver.clock.now() + windowLeftMs;
  const vms = new Map(snap.onSources.map((v) => [v.name, v]));
  const movedVms = bp.moves.map((m) => vms.get(m.vm)!);
  // The books as placement left them, so a re-placement respects every other move's room.
  const ledger = ledgerFor({
    vms: movedVms, destinations: snap.destinations, sources: snap.sources,
    residents: [...snap.residents, ...snap.onSources.filter((v) => bp.pinned.some((p) => p.vm === v.name))], settings,
  });
  for (const m of bp.moves) ledger.commit(vms.get(m.vm)!, m.destination);
  const down = new Set<string>();
  const limits = new Limits(opts.limits ?? resolveLimits(settings.concurrency, snap, driver, settings.bandwidthMibps), { now: () => driver.clock.now(), setupMs: (driver.setupS ?? 0) * 1000 });
  // auto: a look again when a migration in flight comes within a set-up time of its end (Limits.nextLook).
  const looks = new AbortController();
  let lookAt = Infinity;
  const room = new Room(snap.inventory, settings);
  const results: VmResult[] = [...opts.carried ?? []];
  const history = new Map<string, Attempt[]>(opts.history);
  const finish = (r: VmResult) => {
    results.push(r);
    emit({ kind: 'vm-done', t: driver.clock.now(), result: r });
  };
  const queue: Move[] = [...bp.moves].sort((a, b) => (b.estimateS ?? Infinity) - (a.estimateS ?? Infinity) || a.vm.localeCompare(b.vm));
  // auto: what still waits on each link (Limits.tail).
  const backlog = new Backlog();
  for (const m of queue) backlog.add(m);
  // What the run's own moves took against their estimates, live and cold apart (their fixed costs differ).
  const learned = { live: new Learned(), cold: new Learned() };
  // A cold move sends its disk with the guest shut down: nothing dirties it.
  const dirtyOf = (m: Move) => (m.method === 'live' ? vms.get(m.vm)!.dirtyMibps ?? 0 : 0);
  /** Of a live move expected to take ms, the part its local disk takes (by its share of the bytes). */
  const diskMsOf = (m: Move, ms: number) => {
    const vm = vms.get(m.vm)!;
    const disk = vm.storage === 'local' ? (vm.resources.disk_gib ?? 0) * 1024 : 0;
    const memory = vm.residentMib ?? vm.resources.memory_mib ?? 0;
    return m.method === 'live' && disk > 0 ? (Math.max(0, ms - (driver.setupS ?? 0) * 1000) * disk) / (disk + memory) : 0;
  };

  const leave = (m: Move, why: string) => {
    ledger.release(m.vm);
    emit({ kind: 'vm-left', t: driver.clock.now(), vm: m.vm, source: m.source, why });
    finish({ vm: m.vm, source: m.source, plannedDestination: m.destination, host: m.source, status: 'left', method: 'none', reason: why, attempts: history.get(m.vm) ?? [] });
  };
  /** A move whose destination is gone: another destination, or left with why. */
  const redirect = (m: Move, why: string): Move | undefined => {
    const vm = vms.get(m.vm)!;
    ledger.release(m.vm);
    const only = settings.assign[m.vm];
    if (only) return void leave(m, `${why}; the plan assigns it to ${only}, so it goes nowhere else`);
    if ((history.get(m.vm)?.length ?? 0) > MAX_REPLACEMENTS) return void leave(m, `${why}; gave up after ${MAX_REPLACEMENTS} other destinations`);
    const host = chooseHost(ledger, [vm], snap.destinations.filter((h) => !down.has(h.name) && h.name !== m.destination), settings.policy);
    if (!host) return void leave(m, `${why}; no other destination has room`);
    ledger.commit(vm, host.name);
    emit({ kind: 'fallback', t: driver.clock.now(), vm: m.vm, to: 'another destination', why: `${why}; now to ${host.name}` });
    return { ...m, destination: host.name };
  };

  await new Promise<void>((finished) => {
    const finishIfIdle = () => {
      if (limits.active === 0 && queue.length > 0 && !stop.aborted) {
        // Nothing in flight and nothing may start: the moves left wait on each other for room.
        for (const m of queue.splice(0)) leave(m, `waits for room on ${m.destination} that no other move frees (the moves form a cycle); left in place`);
      }
      if (limits.active === 0 && (queue.length === 0 || stop.aborted)) {
        looks.abort();
        finished();
      }
    };
    const lookLater = () => {
      const at = limits.nextLook();
      if (at === undefined || at >= lookAt || queue.length === 0 || stop.aborted) return;
      lookAt = at;
      void driver.clock.sleep(at - driver.clock.now(), looks.signal).then(() => {
        if (lookAt === at) lookAt = Infinity;
        if (!looks.signal.aborted) pump();
      });
    };
    const pump = () => {
      for (let i = 0; i < queue.length;) {
        if (stop.aborted || limits.full) break;
        let m = queue[i];
        if (down.has(m.destination)) {
          const next = redirect(m, `destination ${m.destination} failed earlier in the run`);
          backlog.add(m, -1);
          if (!next) {
            queue.splice(i, 1);
            continue;
          }
          m = queue[i] = next;
          backlog.add(m);
        }
        // A move into a host waits until the moves out of it have made room (rebalancing).
        const own = m.estimateS !== null ? learned[m.method].correct(m.estimateS) * 1000 : 0;
        const expected = m.estimateS !== null ? own : deadlineMs(vms.get(m.vm)!, settings);
        const moving = {
          dirtyMibps: dirtyOf(m), diskMs: diskMsOf(m, own), waiting: backlog.waiting(m, learned, own),
          ...(m.estimateS !== null ? { expectedMs: expected } : {}),
        };
        if (!limits.hasRoom(m.source, m.destination, moving) || !room.fits(vms.get(m.vm)!, m.destination)) {
          i++;
          continue;
        }
        // The maintenance window: a move that would end after it closes does not start.
        if (driver.clock.now() + expected > windowCloses) {
          queue.splice(i, 1);
          backlog.add(m, -1);
          leave(m, `would end after the maintenance window closes (estimated ${Math.round(expected / 1000)} s, ${Math.max(0, Math.round((windowCloses - driver.clock.now()) / 1000))} s left)`);
          continue;
        }
        queue.splice(i, 1);
        backlog.add(m, -1);
        const move = m;
        room.arrive(vms.get(move.vm)!, move.destination);
        let roomFreed = false;
        void limits.run(move.source, move.destination, () => climb({ driver, settings, emit, ...(halt ? { halt } : {}) }, vms.get(move.vm)!, move, history.get(move.vm) ?? []), moving)
          .then((step) => {
            // Both copies hold room while it moves; then only the one that runs.
            roomFreed = true;
            room.leave(vms.get(move.vm)!, 'done' in step && step.done.status === 'moved' ? move.source : move.destination);
            if ('done' in step) {
              const last = step.done.attempts.at(-1);
              if (step.done.status === 'moved' && last?.method === move.method && step.done.attempts.length === 1 && move.estimateS !== null) learned[move.method].add(move.estimateS, (last.end - last.start) / 1000);
              if (step.done.status !== 'moved') ledger.release(move.vm);
              if (step.done.status === 'left') emit({ kind: 'vm-left', t: driver.clock.now(), vm: move.vm, source: move.source, why: step.done.reason });
              finish(step.done);
            } else {
              history.set(move.vm, step.elsewhere);
              down.add(move.destination);
              const next = redirect(move, step.why);
              if (next) {
                queue.unshift(next);
                backlog.add(next);
              }
            }
          })
          .catch((e: unknown) => {
            // A bug, not a driver's failure (drivers are guarded): this VM is reported, the run goes on.
            if (!roomFreed) room.leave(vms.get(move.vm)!, move.destination);
            ledger.release(move.vm);
            const why = `internal error while moving it (${messageOf(e)}); check where it runs on ${move.source} and ${move.destination}`;
            emit({ kind: 'vm-left', t: driver.clock.now(), vm: move.vm, source: move.source, why });
            finish({ vm: move.vm, source: move.source, plannedDestination: move.destination, host: null, status: 'left', method: 'none', reason: why, attempts: history.get(move.vm) ?? [] });
          })
          .finally(pump);
      }
      finishIfIdle();
      lookLater();
    };
    stop.addEventListener('abort', pump, { once: true });
    pump();
  });
  for (const m of queue) leave(m, 'not started: the run was interrupted');

  for (const u of bp.unplaced) {
    finish({ vm: u.vm, source: u.source, plannedDestination: null, host: u.source, status: 'unplaced', method: 'none', reason: u.reasons.map((r) => r.text).join('; '), attempts: history.get(u.vm) ?? [] });
  }
  for (const p of bp.pinned) {
    finish({ vm: p.vm, source: p.host, plannedDestination: null, host: p.host, status: 'pinned', method: 'none', reason: 'pinned by the plan (placement.pinned)', attempts: history.get(p.vm) ?? [] });
  }
  results.sort((a, b) => a.vm.localeCompare(b.vm));
  if (bp.rebalance) {
    emit({ kind: 'stage', t: driver.clock.now(), stage: 'verify', detail: `utilization of ${bp.destinations.length} hosts against the target` });
    const got = await driver.inventory();
    const after = got.ok ? got.inventory : null;
    const rebalance = judgeRebalance(bp, after, settings);
    return { vms: results, proofs: [], rebalance, after, interrupted: stop.aborted, startedAt, endedAt: driver.clock.now() };
  }
  emit({ kind: 'stage', t: driver.clock.now(), stage: 'verify', detail: `looking for domains in any state on ${bp.sources.join(', ')}` });
  const { proofs, after } = await proveEmpty(driver, bp.sources, results, emit, (vm) => selected(settings, vm), settings.select !== undefined);
  return { vms: results, proofs, after, interrupted: stop.aborted, startedAt, endedAt: driver.clock.now() };
}

/** Ask each source what it still holds, in any state, and say why each one is there. */
async function proveEmpty(
  driver: Driver, sources: string[], results: VmResult[], emit: EventSink, inScope: (vm: string) => boolean, scoped = false,
): Promise<{ proofs: HostProof[]; after: Inventory | null }> {
  const got = await driver.inventory();
  const why = new Map(results.map((r) => [r.vm, r.reason]));
  const onHost = new Map<string, Vm[]>();
  for (const v of got.ok ? got.inventory.vms : []) {
    const list = onHost.get(v.host);
    if (list) list.push(v);
    else onHost.set(v.host, [v]);
  }
  const proofs = sources.map((host) => {
    const reachable = got.ok && !got.inventory.unreachable.some((u) => u.host === host);
    const left = got.ok
      ? (onHost.get(host) ?? []).filter((v: Vm) => inScope(v.name)).map((v) => ({ vm: v.name, state: v.state, why: why.get(v.name) ?? 'not in this plan (appeared during the run)' }))
      : [];
    const proof: HostProof = reachable
      ? { host, empty: left.length === 0, left, ...(scoped ? { scoped: true as const } : {}) }
      : { host, empty: false, left: [{ vm: '?', state: 'unknown', why: `${host} did not answer the final check` }] };
    emit({ kind: 'host-empty', t: driver.clock.now(), host, empty: proof.empty, left: proof.left.map((l) => l.vm), ...(scoped ? { scoped: true as const } : {}) });
    return proof;
  });
  return { proofs, after: got.ok ? got.inventory : null };
}

/** Whether a rebalance ended under its target, from the fleet as it is after the run. */
function judgeRebalance(bp: Blueprint, after: Inventory | null, settings: Settings): NonNullable<RunResult['rebalance']> {
  const r = bp.rebalance!;
  if (!after) return { reached: false, shortfall: ['the fleet could not be read after the run'], after: [] };
  const used = usedByHost(after.vms);
  const shortfall: string[] = [];
  const hosts = after.hosts.filter((h) => bp.destinations.includes(h.name));
  const view = hosts.map((h) => ({ host: h.name, utilization: utilizationOf(used.get(h.name) ?? {}, h, settings.overcommit) }));
  for (const { host, utilization } of view) {
    for (const [k, ceiling] of Object.entries(r.ceiling)) {
      if ((utilization[k] ?? 0) > ceiling + 1e-9) shortfall.push(`${host}: ${k} at ${(utilization[k] * 100).toFixed(1)}% against ${(ceiling * 100).toFixed(1)}%`);
    }
  }
  for (const h of r.freed) if (after.vms.some((v) => v.host === h)) shortfall.push(`${h} was to be freed but still holds ${after.vms.filter((v) => v.host === h).map((v) => v.name).join(', ')}`);
  if (r.freeHosts !== undefined && r.freed.length < r.freeHosts) shortfall.push(`freed ${r.freed.length} of ${r.freeHosts} hosts`);
  return { reached: shortfall.length === 0, shortfall, after: view };
}

/**
 * Physical room per host while moves run: a VM holds room on both hosts while it moves, then only
 * where it runs. A move waits until its destination has room (after reserve and overcommit).
 */
class Room {
  private used: Map<string, Resources>;
  private limit = new Map<string, Resources>();

  constructor(inv: Inventory, settings: Settings) {
    this.used = usedByHost(inv.vms);
    for (const h of inv.hosts) {
      const lim: Resources = {};
      for (const [k, cap] of Object.entries(h.capacity)) lim[k] = (cap - (settings.reserve[k] ?? 0)) * (settings.overcommit[k] ?? 1);
      this.limit.set(h.name, lim);
    }
  }

  fits(vm: Vm, host: string): boolean {
    const lim = this.limit.get(host);
    if (!lim) return true;
    const used = this.used.get(host) ?? {};
    // A host already past a limit (before the run) is not made worse, but is not blocked on resources the VM does not use.
    return Object.entries(demandOf(vm)).every(([k, need]) => need <= 0 || lim[k] === undefined || (used[k] ?? 0) + need <= lim[k] + 1e-6);
  }

  arrive(vm: Vm, host: string): void {
    this.add(host, vm, 1);
  }

  leave(vm: Vm, host: string): void {
    this.add(host, vm, -1);
  }

  private add(host: string, vm: Vm, sign: number): void {
    const used = this.used.get(host) ?? {};
    for (const [k, v] of Object.entries(demandOf(vm))) used[k] = (used[k] ?? 0) + sign * v;
    this.used.set(host, used);
  }
}

/** Estimates against what the run's own finished migrations took: the window's checks use them corrected, once three moves have ended. */
export class Learned {
  private readonly ratios: number[] = [];
  /** The median ratio, once worked out (the dispatcher asks for every waiting move). */
  private median: number | undefined;
  add(estimateS: number, actualS: number): void {
    if (estimateS > 0 && actualS >= 0) {
      this.ratios.push(actualS / estimateS);
      this.median = undefined;
    }
  }
  /** The estimate times the median ratio actual / estimated so far (as is until three moves ended). */
  correct(estimateS: number): number {
    if (this.ratios.length < 3) return estimateS;
    if (this.median === undefined) {
      const sorted = [...this.ratios].sort((a, b) => a - b);
      this.median = sorted[Math.floor(sorted.length / 2)];
    }
    return estimateS * this.median;
  }
}

/** The estimates of the moves waiting to start, seconds, summed per source, per destination and in all, live and cold apart. */
class Backlog {
  private readonly sums = new Map<string, number>();
  add(m: Move, sign: 1 | -1 = 1): void {
    if (m.estimateS === null) return;
    for (const k of [`${m.method} out ${m.source}`, `${m.method} in ${m.destination}`, `${m.method} all`]) this.sums.set(k, (this.sums.get(k) ?? 0) + sign * m.estimateS);
  }
  /** What waits, ms, as the run has learned its estimates (Limits' Waiting), less the move asking. */
  waiting(m: Move, learned: Record<'live' | 'cold', Learned>, own: number): { out: number; in: number; total: number } {
    const of = (what: string) => Math.max(0, (['live', 'cold'] as const).reduce((a, method) => a + learned[method].correct(this.sums.get(`${method} ${what}`) ?? 0), 0) * 1000 - own);
    return { out: of(`out ${m.source}`), in: of(`in ${m.destination}`), total: of('all') };
  }
}
