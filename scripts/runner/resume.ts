/**
 * Resuming: the migrations the killed process never saw end are settled by the driver (looked up
 * on both hosts, completed or rolled back), each gets its end in the journal, and what the earlier
 * processes finished is carried into this run's results.
 */
import type { Driver } from '../fleet/driver.ts';
import type { EventSink } from '../events.ts';
import type { Settings } from '../plan/settings.ts';
import type { Attempt, VmResult } from '../model.ts';
import { deadlineMs } from './attempt.ts';
import type { Chain } from './journal.ts';

export async function settleInFlight(chain: Chain, driver: Driver, settings: Settings, emit: EventSink): Promise<void> {
  await Promise.all(chain.inFlight.map(async (f) => {
    const { vm, destination, method } = f;
    const rec = await driver.recover({ vm, destination, method, waitMs: deadlineMs(vm, settings) });
    const t = driver.clock.now();
    emit({ kind: 'recovered', t, vm: vm.name, source: vm.host, destination, method, found: rec.host, action: rec.action });
    const outcome = rec.host === destination ? 'ok' : rec.host === vm.host ? 'aborted' : 'error';
    const detail = `the run was stopped during this migration; ${rec.action}`;
    emit({ kind: 'move-end', t, vm: vm.name, source: vm.host, destination, method, attempt: f.attempt, outcome, detail, bytes: 0, downtimeMs: 0, start: f.start, foundOn: rec.host });
    const attempt: Attempt = { method, destination, start: f.start, end: t, outcome, detail, bytes: 0, downtimeMs: 0, foundOn: rec.host };
    const attempts = [...chain.attempts.get(vm.name) ?? [], attempt];
    const base = { vm: vm.name, source: vm.host, plannedDestination: destination, attempts };
    if (rec.host === destination) emit({ kind: 'vm-done', t, result: { ...base, host: destination, status: 'moved', method, reason: `${method} migration completed while resuming: ${rec.action}` } });
    // Found nowhere it may be touched: reported, never migrated again by this run.
    if (rec.host === null) emit({ kind: 'vm-done', t, result: { ...base, host: null, status: 'left', method: 'none', reason: rec.action } });
  }));
}

/** What a resumed run starts from: earlier attempts of the VMs still on sources, final results of those that left them. */
export function carriedFrom(chain: Chain, onSources: Set<string>): { history: Map<string, Attempt[]>; carried: VmResult[] } {
  const history = new Map([...chain.attempts].filter(([vm]) => onSources.has(vm)));
  const carried = [...chain.results.values()].filter((r) => !onSources.has(r.vm));
  return { history, carried };
}
