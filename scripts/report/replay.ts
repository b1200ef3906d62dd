/**
 * A report from a journal: the run's own reports are built this way (the journal is the record),
 * and `evacuator report JOURNAL` rebuilds them after the fact, also for a run that was killed.
 */
import { userError } from '../errors.ts';
import { chainOf, type Line } from '../runner/journal.ts';
import type { HostProof } from '../model.ts';
import type { ReportInput } from './build.ts';

export function reportFromJournal(lines: Line[], path: string): ReportInput {
  const chain = chainOf(lines);
  const planned = chain?.lastPlanned;
  if (!chain || !planned || !chain.before) {
    throw userError(`${path} holds no planned run`, [], 'give the journal of a run that got past placement (reports/<plan name>.journal.jsonl)');
  }
  const first = chain.runs[0];
  const last = chain.runs.at(-1)!;
  const end = chain.end;
  // A run that did not end (killed): nothing proves its sources empty.
  const proofs: HostProof[] = end?.proofs ?? (planned.rebalance ? [] : planned.sources).map((host) => ({
    host, empty: false, left: [{ vm: '?', state: 'unknown', why: `run ${last.run} did not finish; resume it to settle and check this host` }],
  }));
  return {
    plan: last.plan,
    driver: last.driver,
    ...(planned.limits ? { limits: planned.limits } : {}),
    sources: planned.sources,
    destinations: planned.destinations,
    warnings: planned.warnings,
    before: chain.before,
    after: end?.after ?? null,
    vms: [...chain.results.values()],
    proofs,
    ...(planned.rebalance ? { rebalance: { planned: planned.rebalance, ...(end?.rebalance ? { result: end.rebalance } : {}) } } : {}),
    interrupted: end ? end.interrupted : true,
    startedAt: first.t ?? 0,
    endedAt: end?.t ?? chain.lastT,
    wall: { start: new Date(first.at), end: new Date(end?.at ?? chain.lastAt) },
  };
}
