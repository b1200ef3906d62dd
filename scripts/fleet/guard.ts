/**
 * The crash-proof seam: every driver is wrapped once, where it is opened. Whatever a driver
 * method throws, rejects with, or how long it hangs, the run gets a classified outcome instead:
 * a failed inventory, a preflight check that failed, a migration that failed (after asking the
 * driver to abort a live job it lost track of), a VM located nowhere reachable. A driver's bug
 * costs the VM it touched (reported, left where it is), never the run.
 */
import { messageOf } from '../errors.ts';
import type { Method } from '../model.ts';
import type { CheckResult, Clock, Driver, Failure, Location, MaintainStep, MigrationOutcome, Recovery } from './driver.ts';
import type { Vm } from './types.ts';

/** How long each kind of call may take before it counts as hung (the run derives them from the plan: runner/evacuate.ts guardLimits). */
export interface GuardLimits {
  /** Longest wait for a call that reads or marks the fleet (inventory, preflight, locate, fence, abort), ms. */
  callMs: number;
  /** Longest wait for one migration of vm before it counts as hung, ms. */
  migrationMs: (vm: Vm, method: Method) => number;
  /** Longest wait for a recovery asked to wait waitMs for a job. */
  recoverMs: (waitMs: number) => number;
}

const HUNG = Symbol('hung');

/**
 * Run call with a bound on the driver's own clock (virtual time for the simulator); a throw, a
 * rejection or a hang becomes fail(detail). A call that hangs is left to settle on its own,
 * its late rejection swallowed.
 */
async function shield<T>(clock: Clock, ms: number, what: string, call: () => Promise<T>, fail: (detail: string, hung: boolean) => T | Promise<T>): Promise<T> {
  const timer = new AbortController();
  let pending: Promise<T>;
  try {
    pending = Promise.resolve(call());
  } catch (e) {
    return fail(`${what} failed: ${messageOf(e)}`, false);
  }
  pending.catch(() => {});
  try {
    const r = await Promise.race([pending, clock.sleep(ms, timer.signal).then(() => HUNG)]);
    if (r === HUNG) return await fail(`${what} did not answer within ${Math.round(ms / 1000)} s`, true);
    return r as T;
  } catch (e) {
    return fail(`${what} failed: ${messageOf(e)}`, false);
  } finally {
    timer.abort();
  }
}

/** The driver, with every method made total: it resolves, within its bound, to a typed outcome. */
export function guardDriver(inner: Driver, limits: GuardLimits): Driver {
  if ((inner as Partial<Guarded>)[GUARDED]) return inner;
  const clock = inner.clock;
  const failed = (detail: string, host?: string): Failure => ({ ok: false, reason: 'error', detail, ...(host ? { host } : {}) });
  const guarded: Driver & Guarded = {
    [GUARDED]: true,
    name: inner.name,
    clock,
    ...(inner.streamMibps !== undefined ? { streamMibps: inner.streamMibps } : {}),
    ...(inner.perHostMigrations !== undefined ? { perHostMigrations: inner.perHostMigrations } : {}),
    ...(inner.setupS !== undefined ? { setupS: inner.setupS } : {}),
    ...(inner.coldS !== undefined ? { coldS: inner.coldS } : {}),
    inventory: () => shield(clock, limits.callMs, `${inner.name} inventory`, () => inner.inventory(),
      (detail) => ({ ok: false, reason: 'unreachable', detail })),
    preflight: async (items) => {
      const answers = await shield(clock, limits.callMs, `${inner.name} preflight`, () => inner.preflight(items),
        (detail) => items.map((): CheckResult[] => [{ check: 'reachable', ok: false, detail }]));
      // An answer of the wrong shape counts as no answer for the items it misses.
      return items.map((_, i) => (Array.isArray(answers?.[i]) ? answers[i] : [{ check: 'reachable', ok: false, detail: `${inner.name} preflight gave no answer for this move` }]));
    },
    liveMigrate: (req) => shield(clock, limits.migrationMs(req.vm, 'live'), `live migration of ${req.vm.name}`, () => inner.liveMigrate(req),
      (detail) => settle(req.vm, req.destination, 'live', detail)),
    abort: (vm) => shield(clock, limits.callMs, `abort of ${vm.name}'s migration`, () => inner.abort(vm), (detail) => failed(detail)),
    coldMigrate: (req) => shield(clock, limits.migrationMs(req.vm, 'cold'), `cold migration of ${req.vm.name}`, () => inner.coldMigrate(req),
      (detail) => settle(req.vm, req.destination, 'cold', detail)),
    recover: (req) => shield(clock, limits.recoverMs(req.waitMs), `recovery of ${req.vm.name}`, () => inner.recover(req),
      (detail): Recovery => ({ host: null, action: `could not settle it: ${detail}; look at ${req.vm.host} and ${req.destination} before running it again` })),
    fence: (host, fence, force) => shield(clock, limits.callMs, `marking ${host}`, () => inner.fence(host, fence, force),
      (detail) => ({ ok: false, reason: 'unreachable', detail, host })),
    locate: (vm, hosts) => shield(clock, limits.callMs, `looking up ${vm.name}`, () => inner.locate(vm, hosts),
      (): Location => ({ vm: vm.name, found: [], unreachable: [...hosts] })),
    close: () => shield(clock, limits.callMs, `closing ${inner.name}`, () => inner.close(), () => undefined),
    // A command on a host: bounded by the caller's own timeout (the roll wraps it in timeout(1)).
    ...(inner.exec ? { exec: (host: string, argv: string[]) => inner.exec!(host, argv) } : {}),
    ...(inner.power ? {
      power: (vm: Vm, to: 'off' | 'on', o: { timeoutS: number; forceOff: boolean }) => shield(clock, o.timeoutS * 1000 + 2 * limits.callMs, `${to === 'off' ? 'shutdown' : 'start'} of ${vm.name}`, () => inner.power!(vm, to, o), (detail) => failed(detail, vm.host)),
    } : {}),
    ...(inner.maintain ? {
      maintain: (host: string, step: MaintainStep) => shield(clock, step.durationMs + limits.callMs, `maintenance of ${host}`, () => inner.maintain!(host, step), (detail) => failed(detail)),
    } : {}),
  };
  /**
   * A migration call that threw or hung may have left a job running or a guest shut down: the
   * driver's own recovery settles it (completes it or rolls it back, as after a killed run)
   * before anyone acts on the VM again; the attempt is marked unsettled so no fallback follows.
   */
  async function settle(vm: Vm, destination: string, method: Method, detail: string): Promise<MigrationOutcome> {
    // A live job that may still run is stopped first, so it cannot finish behind the run's back.
    if (method === 'live') await guarded.abort(vm);
    const rec = await guarded.recover({ vm, destination, method, waitMs: 0 });
    return { ...failed(`${detail}; ${rec.action}`), unsettled: true, bytes: 0 };
  }
  return guarded;
}

const GUARDED = Symbol('guarded');
interface Guarded { [GUARDED]: true }
