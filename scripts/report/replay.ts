/**
 * A report from a journal: the run's own reports are built this way (the journal is the record),
 * and `evacuator report JOURNAL` rebuilds them after the fact, also for a run that was killed.
 */
import { userError } from '../errors.ts';
import { chainOf, type Chain, type Line } from '../runner/journal.ts';
import type { HostProof, VmResult } from '../model.ts';
import type { Planned } from '../events.ts';
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
    vms: end ? [...chain.results.values()] : withUnfinished(chain, planned),
    proofs,
    ...(planned.rebalance ? { rebalance: { planned: planned.rebalance, ...(end?.rebalance ? { result: end.rebalance } : {}) } } : {}),
    estimates: Object.fromEntries(planned.moves.map((m) => [m.vm, m.estimateS])),
    least: Object.fromEntries(planned.moves.flatMap((m) => (m.leastMib === undefined ? [] : [[m.vm, m.leastMib]]))),
    best: Object.fromEntries(planned.moves.flatMap((m) => (m.bestMibps === undefined ? [] : [[m.vm, m.bestMibps]]))),
    interrupted: end ? end.interrupted : true,
    startedAt: first.t ?? 0,
    endedAt: end?.t ?? chain.lastT,
    wall: { start: new Date(first.at), end: new Date(end?.at ?? chain.lastAt) },
  };
}

/**
 * A run that did not end (killed): every VM it planned is in the report, not only those it
 * finished. One in flight at the kill is where a resume will find it (host unknown until then);
 * one not started is still on its source.
 */
function withUnfinished(chain: Chain, planned: Planned): VmResult[] {
  const results = new Map(chain.results);
  const flying = new Map(chain.inFlight.map((f) => [f.vm.name, f]));
  const attempts = (vm: string) => chain.attempts.get(vm) ?? [];
  for (const m of planned.moves) {
    if (results.has(m.vm)) continue;
    const f = flying.get(m.vm);
    results.set(m.vm, f
      ? { vm: m.vm, source: m.source, plannedDestination: f.destination, host: null, status: 'left', method: 'none', reason: `a ${f.method} migration to ${f.destination} was in flight when the run stopped; resume it to settle where the VM runs`, attempts: attempts(m.vm) }
      : { vm: m.vm, source: m.source, plannedDestination: m.destination, host: m.source, status: 'left', method: 'none', reason: 'not started: the run stopped before it (resume it)', attempts: attempts(m.vm) });
  }
  for (const u of planned.unplaced) {
    if (!results.has(u.vm)) results.set(u.vm, { vm: u.vm, source: u.source, plannedDestination: null, host: u.source, status: 'unplaced', method: 'none', reason: u.reasons.map((r) => r.text).join('; '), attempts: [] });
  }
  for (const p of planned.pinned) {
    if (!results.has(p.vm)) results.set(p.vm, { vm: p.vm, source: p.host, plannedDestination: null, host: p.host, status: 'pinned', method: 'none', reason: 'pinned by the plan (placement.pinned)', attempts: [] });
  }
  return [...results.values()];
}
