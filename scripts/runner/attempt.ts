/**
 * One migration attempt: live with a deadline (then abort) or cold; the outcome is classified by
 * looking the VM up on both hosts, never by reading error text.
 */
import type { Driver, MigrationOutcome } from '../fleet/driver.ts';
import type { Vm } from '../fleet/types.ts';
import type { EventSink } from '../events.ts';
import type { Attempt, Method, Progress } from '../model.ts';
import type { Settings } from '../plan/settings.ts';

export interface AttemptContext {
  driver: Driver;
  settings: Settings;
  emit: EventSink;
  /** Aborted on a second interrupt: live migrations in flight are cancelled (the guest stays on its source). */
  halt?: AbortSignal;
}

/** The live-migration deadline: completion timeout per GiB of memory plus local disk. */
export function deadlineMs(vm: Vm, settings: Settings): number {
  const gib = (vm.resources.memory_mib ?? 0) / 1024 + (vm.storage === 'local' ? vm.resources.disk_gib ?? 0 : 0);
  return Math.max(1, gib) * settings.timeoutSPerGib * 1000;
}

/** The cold-migration deadline: the shutdown timeout, then the per-GiB timeout over memory and every disk (a cold move copies them all). */
export function coldDeadlineMs(vm: Vm, settings: Settings): number {
  return settings.cold.shutdownTimeoutS * 1000 + deadlineMs({ ...vm, storage: 'local' }, settings);
}

export async function attempt(ctx: AttemptContext, vm: Vm, destination: string, method: Method, n: number): Promise<Attempt> {
  const { driver, settings, emit } = ctx;
  const clock = driver.clock;
  const start = clock.now();
  emit({ kind: 'move-start', t: start, vm: vm.name, source: vm.host, destination, method, attempt: n });
  const onProgress = (progress: Progress) =>
    emit({ kind: 'progress', t: clock.now(), progress });
  let timedOut = false;
  let halted = false;
  let out: MigrationOutcome;
  if (method === 'live') {
    const stop = new AbortController();
    const watchdog = clock.sleep(deadlineMs(vm, settings), stop.signal).then(async () => {
      if (stop.signal.aborted) return;
      timedOut = true;
      await driver.abort(vm);
    });
    // A second interrupt cancels the job as the deadline would.
    const onHalt = () => {
      halted = true;
      void driver.abort(vm);
    };
    if (ctx.halt?.aborted) onHalt();
    else ctx.halt?.addEventListener('abort', onHalt, { once: true });
    out = await driver.liveMigrate({
      vm, destination, maxDowntimeMs: settings.maxDowntimeMs, autoConverge: settings.autoConverge, postCopy: settings.postCopy, onProgress,
      ...(settings.bandwidthMibps !== undefined ? { bandwidthMibps: settings.bandwidthMibps } : {}),
    });
    stop.abort();
    ctx.halt?.removeEventListener('abort', onHalt);
    await watchdog;
  } else {
    out = await driver.coldMigrate({
      vm, destination, onProgress, shutdownTimeoutS: settings.cold.shutdownTimeoutS, forceOff: settings.cold.forceOff, deadlineMs: coldDeadlineMs(vm, settings),
      ...(settings.bandwidthMibps !== undefined ? { bandwidthMibps: settings.bandwidthMibps } : {}),
    });
  }
  // Classify by where the VM is, not by what the error said.
  const where = await lookUp(driver, vm, [vm.host, destination]);
  const onDest = where.found.find((f) => f.host === destination && f.state !== 'crashed');
  const onSource = where.found.find((f) => f.host === vm.host);
  const foundOn = onDest ? destination : onSource ? vm.host : null;
  let outcome: Attempt['outcome'];
  let detail: string;
  let destinationDown = false;
  if (onDest && !onSource) {
    outcome = 'ok';
    detail = out.ok ? `${method} migration done${out.note ? ` (${out.note})` : ''}` : `reported ${out.reason} (${out.detail}), but the VM runs on ${destination}`;
  } else if (where.unreachable.length > 0 && !onDest && !onSource) {
    // Not seen anywhere because the hosts did not say: unknown, not lost.
    outcome = 'unreachable';
    detail = `${out.ok ? 'the driver reported success' : `${out.reason}: ${out.detail}`}; then ${where.unreachable.join(' and ')} did not say where the VM is: check there`;
  } else if (out.ok) {
    outcome = 'error';
    detail = `the driver reported success but the VM is ${foundOn ? `on ${foundOn}` : 'on neither host'}`;
  } else if (onSource && !out.unsettled && (where.unreachable.includes(destination) || (out.reason === 'unreachable' && out.host === destination))) {
    // A destination that stopped answering is not a slow migration: it is a failed destination
    // (the run sends the VM elsewhere), whatever the deadline or the driver's message said.
    outcome = 'unreachable';
    destinationDown = true;
    detail = `${destination} stopped answering (${out.reason}: ${out.detail}); the VM stays on ${vm.host}`;
  } else if (halted) {
    outcome = 'aborted';
    detail = `aborted on the second interrupt; ${onSource ? 'still running on the source' : 'not found on the source'}`;
  } else if (timedOut) {
    outcome = 'timeout';
    detail = `did not finish within the deadline of ${Math.round(deadlineMs(vm, settings) / 1000)} s (${settings.timeoutSPerGib} s per GiB); aborted, ${onSource ? 'still running on the source' : 'not found on the source'}`;
  } else {
    outcome = out.reason;
    detail = out.detail;
  }
  const end = clock.now();
  const result: Attempt = {
    method, destination, start, end, outcome, detail, foundOn,
    bytes: out.bytes ?? 0,
    downtimeMs: out.ok ? out.downtimeMs : 0,
    ...(out.ok && out.rounds !== undefined ? { rounds: out.rounds } : {}),
    ...(destinationDown ? { failedHost: destination } : !out.ok && out.host ? { failedHost: out.host } : {}),
    ...(!out.ok && out.unsettled ? { unsettled: true as const } : {}),
  };
  emit({
    kind: 'move-end', t: end, vm: vm.name, source: vm.host, destination, method, attempt: n, outcome, detail, bytes: result.bytes, downtimeMs: result.downtimeMs,
    start, foundOn, ...(result.failedHost ? { failedHost: result.failedHost } : {}),
  });
  return result;
}

/** Where the VM is, asked again a few times while a host does not answer (a look-up that failed once is not an answer). */
async function lookUp(driver: Driver, vm: Vm, hosts: string[]) {
  let where = await driver.locate(vm, hosts);
  for (let i = 0; i < LOOKUPS - 1 && where.unreachable.length > 0 && where.found.length === 0; i++) {
    await driver.clock.sleep(LOOKUP_PAUSE_MS);
    where = await driver.locate(vm, hosts);
  }
  return where;
}
const LOOKUPS = 3;
const LOOKUP_PAUSE_MS = 2000;
