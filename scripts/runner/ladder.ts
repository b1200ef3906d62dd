/**
 * The failure ladder of one VM: live -> another destination (when the destination failed) ->
 * cold (only where the plan allows shutting it down) -> left in place and reported.
 */
import type { Vm } from '../fleet/types.ts';
import { coldAllowed } from '../plan/settings.ts';
import type { Attempt, Move, VmResult, VmStatus } from '../model.ts';
import { attempt, type AttemptContext } from './attempt.ts';

/** Either the VM's final result, or a request to try it again towards another destination. */
export type Step = { done: VmResult } | { elsewhere: Attempt[]; why: string };

export async function climb(ctx: AttemptContext, vm: Vm, move: Move, previous: Attempt[]): Promise<Step> {
  const attempts = [...previous];
  const settings = ctx.settings;
  const result = (status: VmStatus, a: Attempt | undefined, reason: string): Step => ({
    done: {
      vm: vm.name, source: vm.host, plannedDestination: move.destination, host: a ? a.foundOn : vm.host, status,
      method: status === 'moved' && a ? a.method : 'none', reason, attempts,
    },
  });
  const destinationFailed = (a: Attempt) => a.outcome === 'unreachable' && a.failedHost === move.destination;

  let last: Attempt | undefined;
  if (move.method === 'live') {
    last = await attempt(ctx, vm, move.destination, 'live', attempts.length + 1);
    attempts.push(last);
    if (last.outcome === 'ok') return result('moved', last, 'live migration done');
    if (last.unsettled) return result('left', last, `live migration did not end cleanly, so no fallback: ${last.detail}`);
    if (ctx.halt?.aborted) return result('left', last, `interrupted: ${last.detail}`);
    if (destinationFailed(last)) return { elsewhere: attempts, why: last.detail };
    if (last.foundOn !== vm.host) return result('left', last, `live migration failed and the VM is ${last.foundOn ? `on ${last.foundOn}` : 'on neither host'}: ${last.detail}`);
    const why = `live migration ${last.outcome}: ${last.detail}`;
    if (settings.mode === 'live') return result('left', last, `${why}; mode is live, so no cold fallback`);
    if (!coldAllowed(settings, vm.name)) return result('left', last, `${why}; the plan does not allow shutting it down (migration.cold.allow)`);
    ctx.emit({ kind: 'fallback', t: ctx.driver.clock.now(), vm: vm.name, to: 'cold', why });
  }
  if (ctx.halt?.aborted) return result('left', last, 'interrupted before its cold migration started');
  last = await attempt(ctx, vm, move.destination, 'cold', attempts.length + 1);
  attempts.push(last);
  if (last.outcome === 'ok') return result('moved', last, move.method === 'live' ? 'cold migration after live failed' : 'cold migration done');
  if (destinationFailed(last) && !last.unsettled) return { elsewhere: attempts, why: last.detail };
  return result('left', last, `cold migration ${last.outcome}: ${last.detail}`);
}
