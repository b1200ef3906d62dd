/**
 * The blueprint of a rebalance: the planner's moves, each checked by the driver's read-only
 * preflight (a move that fails is dropped with its reason, and the target re-judged), and the
 * snapshot the runner works from (the moving VMs as if on sources, every other VM a resident).
 */
import type { Driver } from '../fleet/driver.ts';
import type { Snapshot } from '../fleet/discover.ts';
import type { LoadedPlan } from '../plan/load.ts';
import type { Settings } from '../plan/settings.ts';
import { planRebalance } from '../placement/rebalance.ts';
import type { Unplaced } from '../placement/place.ts';
import { planMoves, type Blueprint } from './blueprint.ts';
import { checkMoves } from './checks.ts';

export async function makeRebalanceBlueprint(loaded: LoadedPlan, settings: Settings, snap: Snapshot, driver: Driver): Promise<{ bp: Blueprint; snap: Snapshot }> {
  const scope = snap.destinations;
  const inScope = new Set(scope.map((h) => h.name));
  const vms = snap.inventory.vms.filter((v) => inScope.has(v.host));
  const r = settings.rebalance!;
  const plan = planRebalance({
    hosts: scope, vms, pinned: new Set(settings.pinned),
    settings: { overcommit: settings.overcommit, reserve: settings.reserve, groups: settings.groups },
    target: r.target, budget: r.budget, policy: settings.policy,
  });
  const byName = new Map(vms.map((v) => [v.name, v]));
  const answers = await checkMoves(plan.moves.map((m) => ({ vm: byName.get(m.vm)!, destination: m.destination })), snap.inventory, driver, settings.overcommit);
  const unplaced: Unplaced[] = [];
  const checks = plan.moves.map((m, i) => {
    // Room is the planner's and the runner's concern: a destination may only have it once its own VMs have left.
    const failed = answers[i].filter((c) => !c.ok && c.check !== 'memory' && c.check !== 'disk').map(({ check, detail }) => ({ check, detail }));
    if (failed.length > 0) unplaced.push({ vm: m.vm, source: m.source, reasons: [{ kind: 'avoid', text: `preflight ${failed.map((f) => `${f.check}: ${f.detail}`).join('; ')}`, hosts: [m.destination] }] });
    return { vm: m.vm, destination: m.destination, ok: failed.length === 0, failed };
  });
  const cleared = plan.moves.filter((_, i) => checks[i].ok);
  const moving = new Set(cleared.map((m) => m.vm));
  const sources = scope.filter((h) => cleared.some((m) => m.source === h.name));
  const moves = planMoves(cleared.map((m) => ({ vm: byName.get(m.vm)!, destination: m.destination })), settings, { ...snap, sources: scope });
  const shortfall = [...plan.shortfall, ...unplaced.map((u) => `${u.vm} cannot move: ${u.reasons[0].text}`)];
  const bp: Blueprint = {
    version: 1,
    plan: { name: loaded.plan.name, file: loaded.file, digest: loaded.digest },
    driver: driver.name,
    policy: settings.policy,
    sources: sources.map((h) => h.name),
    destinations: scope.map((h) => h.name),
    destinationsUsed: new Set(moves.map((m) => m.destination)).size,
    moves,
    unplaced,
    pinned: [],
    preflight: { ok: unplaced.length === 0, rounds: 1, checks },
    warnings: [...loaded.warnings.map((w) => `${w.path}: ${w.message}`), ...snap.warnings],
    rebalance: {
      ceiling: plan.ceiling,
      ...(r.target.freeHosts ? { freeHosts: r.target.freeHosts } : {}),
      freed: plan.freed,
      reached: plan.reached && unplaced.length === 0,
      shortfall,
      bytes: cleared.reduce((n, m) => n + m.bytes, 0),
      hosts: plan.hosts,
    },
  };
  const runSnap: Snapshot = {
    ...snap,
    sources,
    destinations: scope,
    onSources: vms.filter((v) => moving.has(v.name)),
    residents: vms.filter((v) => !moving.has(v.name)),
  };
  return { bp, snap: runSnap };
}
