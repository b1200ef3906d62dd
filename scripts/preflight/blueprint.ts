/**
 * The blueprint: what a run will do, computed the same way by `plan` (to show) and `run` (to do).
 * Placement, then the read-only preflight grid; a VM that fails a check on its destination is
 * placed again elsewhere (at most a few rounds), and what still fails is reported, before anything moves.
 */
import { loadMip } from '../placement/mip.ts';
import type { CheckResult, Driver } from '../fleet/driver.ts';
import type { Snapshot } from '../fleet/discover.ts';
import { estimatePrecopy, MiB } from '../fleet/precopy.ts';
import { nicMibpsOf, unmovable, type Host, type Resources, type Vm } from '../fleet/types.ts';
import type { HostUtilization } from '../placement/rebalance.ts';
import type { Method, Move } from '../model.ts';
import type { LoadedPlan } from '../plan/load.ts';
import { coldAllowed, type Settings } from '../plan/settings.ts';
import { placePreferring, type Unplaced } from '../placement/place.ts';
import { checkMoves } from './checks.ts';
import { limitOn, resolveLimits, worthSharing } from '../runner/limits.ts';

export interface Blueprint {
  version: 1;
  plan: { name: string; file: string; digest: string };
  driver: string;
  policy: 'pack' | 'spread';
  sources: string[];
  destinations: string[];
  destinationsUsed: number;
  /** pack: no placement of these moves gives VMs to fewer hosts (equal to destinationsUsed: proven fewest); absent when preflight changed the placement. */
  receivingLowerBound?: number;
  /** VMs are left, and the placement's integer program proved that no placement places more of them; absent when preflight changed the placement. */
  mostPlacedProven?: true;
  moves: Move[];
  unplaced: Unplaced[];
  pinned: { vm: string; host: string }[];
  preflight: {
    ok: boolean;
    rounds: number;
    checks: { vm: string; destination: string; ok: boolean; failed: { check: string; detail: string }[] }[];
  };
  warnings: string[];
  /** A rebalance: the target, what the moves reach, and each host's utilization before and after. */
  rebalance?: RebalanceSummary;
}

export interface RebalanceSummary {
  /** The ceiling applied per resource (fractions of capacity x overcommit). */
  ceiling: Resources;
  freeHosts?: number;
  freed: string[];
  reached: boolean;
  shortfall: string[];
  bytes: number;
  hosts: HostUtilization[];
}

const PREFLIGHT_ROUNDS = 3;

export async function makeBlueprint(loaded: LoadedPlan, settings: Settings, snap: Snapshot, driver: Driver): Promise<Blueprint> {
  await loadMip();
  const pinned = snap.onSources.filter((v) => settings.pinned.includes(v.name));
  const unplaced: Unplaced[] = [];
  const movable: Vm[] = [];
  for (const vm of snap.onSources) {
    if (settings.pinned.includes(vm.name)) continue;
    const stuck = unmovable(vm.state);
    if (stuck) {
      unplaced.push({ vm: vm.name, source: vm.host, reasons: [{ kind: 'avoid', text: stuck, hosts: [] }] });
    } else if (settings.mode === 'cold' && vm.state !== 'shutoff' && !coldAllowed(settings, vm.name)) {
      unplaced.push({ vm: vm.name, source: vm.host, reasons: [{ kind: 'avoid', text: 'mode is cold and the plan does not allow shutting it down (migration.cold.allow)', hosts: [] }] });
    } else movable.push(vm);
  }
  const byName = new Map(movable.map((v) => [v.name, v]));
  const avoid: { vm: string; host: string; why: string }[] = [];
  // One entry per assigned VM (not one per host it may not use: 40,000 assigned VMs on 2,000 hosts would be 80 million).
  const only = movable.flatMap((vm) => (settings.assign[vm.name] ? [{ vm: vm.name, host: settings.assign[vm.name], why: `the plan assigns it to ${settings.assign[vm.name]}` }] : []));
  const checked = new Map<string, CheckResult[]>();
  let rounds = 0;
  let result = placeWith(avoid);
  for (; rounds < PREFLIGHT_ROUNDS; rounds++) {
    const fresh = result.assignments.filter((a) => !checked.has(`${a.vm}>${a.destination}`));
    if (fresh.length === 0) break;
    const answers = await checkMoves(fresh.map((a) => ({ vm: byName.get(a.vm)!, destination: a.destination })), snap.inventory, driver, settings.overcommit);
    fresh.forEach((a, i) => checked.set(`${a.vm}>${a.destination}`, answers[i]));
    const failed = fresh.filter((_, i) => answers[i].some((c) => !c.ok));
    if (failed.length === 0) break;
    for (const a of failed) {
      const bad = checked.get(`${a.vm}>${a.destination}`)!.filter((c) => !c.ok);
      const why = `preflight ${bad.map((c) => `${c.check}: ${c.detail}`).join('; ')}`;
      // A destination that does not answer is out for everyone.
      const targets = bad.some((c) => c.check === 'reachable') ? movable.map((v) => v.name) : [a.vm];
      for (const vm of targets) avoid.push({ vm, host: a.destination, why });
    }
    result = placeWith(avoid);
  }
  // Past the rounds that may re-place, the moves the last placement made are still checked (never
  // left as "did not finish"): one that fails now is reported with its reason, the others go.
  const unchecked = result.assignments.filter((a) => !checked.has(`${a.vm}>${a.destination}`));
  if (unchecked.length > 0) {
    const answers = await checkMoves(unchecked.map((a) => ({ vm: byName.get(a.vm)!, destination: a.destination })), snap.inventory, driver, settings.overcommit);
    unchecked.forEach((a, i) => checked.set(`${a.vm}>${a.destination}`, answers[i]));
  }
  const checks = result.assignments.map((a) => {
    const answers = checked.get(`${a.vm}>${a.destination}`) ?? [];
    const failed = answers.filter((c) => !c.ok).map(({ check, detail }) => ({ check, detail }));
    return { vm: a.vm, destination: a.destination, ok: answers.length > 0 && failed.length === 0, failed };
  });
  const cleared = new Set(checks.filter((c) => c.ok).map((c) => c.vm));
  for (const c of checks.filter((x) => !x.ok)) {
    const text = c.failed.length > 0 ? `preflight ${c.failed.map((f) => `${f.check}: ${f.detail}`).join('; ')}` : 'preflight did not finish';
    unplaced.push({ vm: c.vm, source: byName.get(c.vm)!.host, reasons: [{ kind: 'avoid', text, hosts: [c.destination] }] });
  }
  unplaced.push(...result.unplaced);
  const moves = planMoves(result.assignments.filter((a) => cleared.has(a.vm)).map((a) => ({ vm: byName.get(a.vm)!, destination: a.destination })), settings, snap);
  return evacuationBlueprint(loaded, driver, settings, snap, {
    moves,
    unplaced: unplaced.sort((a, b) => a.vm.localeCompare(b.vm)),
    pinned: pinned.map((v) => ({ vm: v.name, host: v.host })),
    preflight: { ok: checks.every((c) => c.ok), rounds: rounds + 1, checks },
    // The placement's bound holds for its own moves: only when preflight kept every one of them.
    ...(result.lowerBound !== undefined && moves.length === result.assignments.length ? { receivingLowerBound: result.lowerBound } : {}),
    ...(result.mostPlaced && moves.length === result.assignments.length ? { mostPlacedProven: true as const } : {}),
  });

  function placeWith(avoidNow: typeof avoid) {
    return placePreferring({
      vms: movable,
      destinations: snap.destinations,
      sources: snap.sources,
      residents: [...snap.residents, ...pinned],
      settings,
      avoid: avoidNow,
      only,
    }, settings.prefer);
  }
}

/**
 * The planned moves of these VMs, each with its estimate: a link is shared by no more moves than
 * the limits allow and than the plan sends over it (a limit of 1,000 per destination does not
 * split a NIC a thousand ways for the three moves into it).
 */
export function planMoves(list: { vm: Vm; destination: string }[], settings: Settings, snap: Pick<Snapshot, 'sources' | 'setupS' | 'coldS' | 'streamMibps' | 'perHostMigrations'> & { destinations?: Host[] }): Move[] {
  const out = new Map<string, Set<string>>();
  const inn = new Map<string, Set<string>>();
  const count = new Map<string, number>();
  for (const { vm, destination } of list) {
    (out.get(vm.host) ?? out.set(vm.host, new Set()).get(vm.host)!).add(destination);
    (inn.get(destination) ?? inn.set(destination, new Set()).get(destination)!).add(vm.host);
    count.set(`out ${vm.host}`, (count.get(`out ${vm.host}`) ?? 0) + 1);
    count.set(`in ${destination}`, (count.get(`in ${destination}`) ?? 0) + 1);
  }
  return list.map(({ vm, destination }) => planMove(vm, destination, settings, snap, {
    out: count.get(`out ${vm.host}`)!, in: count.get(`in ${destination}`)!, receivers: out.get(vm.host)!.size, senders: inn.get(destination)!.size,
  }));
}

/** What a move's links carry in the plan: moves out of its source and into its destination, and how many hosts those go to and come from. */
export interface PlannedLinks {
  out: number;
  in: number;
  receivers: number;
  senders: number;
}

/** A planned move of vm: cold where the plan moves everything cold or the guest is off, else live; with its estimate. */
export function planMove(vm: Vm, destination: string, settings: Settings, snap: Pick<Snapshot, 'sources' | 'setupS' | 'coldS' | 'streamMibps' | 'perHostMigrations'> & { destinations?: Host[] }, moves?: PlannedLinks): Move {
  const method: Method = settings.mode === 'cold' || vm.state === 'shutoff' ? 'cold' : 'live';
  const best = bestMibps(vm, settings, snap, destination);
  return {
    vm: vm.name, source: vm.host, destination, method, estimateS: estimateSeconds(vm, settings, snap, destination, method, moves),
    ...(method === 'live' ? { leastMib: leastMemoryMib(vm, settings, snap, destination) } : {}),
    ...(Number.isFinite(best) && best > 0 ? { bestMibps: best } : {}),
  };
}

/** The fastest one migration stream of vm to destination can go, MiB/s: the bandwidth cap, the stream ceiling, the NICs at both ends. */
function bestMibps(vm: Vm, settings: Settings, snap: Pick<Snapshot, 'sources' | 'streamMibps'> & { destinations?: Host[] }, destination: string): number {
  const src = snap.sources.find((h) => h.name === vm.host);
  const dst = snap.destinations?.find((h) => h.name === destination);
  return Math.min(settings.bandwidthMibps ?? Infinity, snap.streamMibps ?? Infinity, nicMibpsOf(src), dst ? nicMibpsOf(dst) : Infinity);
}

/**
 * The least memory (MiB) a live pre-copy of vm can send: the model's rounds at the best rate it
 * can get (alone on its links: the NICs at both ends, the stream ceiling, the bandwidth cap), where
 * a higher rate means shorter rounds and less dirtied. Its memory once where post-copy or
 * auto-converge may cut the rounds short, or where it would not converge even alone.
 */
export function leastMemoryMib(vm: Vm, settings: Settings, snap: Pick<Snapshot, 'sources' | 'streamMibps'> & { destinations?: Host[] }, destination: string): number {
  const memory = vm.residentMib ?? vm.resources.memory_mib ?? 0;
  if (settings.postCopy || settings.autoConverge || !vm.dirtyMibps) return memory;
  const best = bestMibps(vm, settings, snap, destination);
  if (!Number.isFinite(best) || best <= 0) return memory;
  const e = estimatePrecopy({ memoryBytes: memory * MiB, rateBps: best * MiB, dirtyBps: vm.dirtyMibps * MiB, downtimeMs: settings.maxDowntimeMs });
  return e.converges ? Math.round(e.sentBytes / MiB) : memory;
}

/** An evacuation's blueprint around its moves: the plan, the driver, the hosts and the warnings as discovered. */
export function evacuationBlueprint(
  loaded: LoadedPlan, driver: Pick<Driver, 'name'>, settings: Settings, snap: Pick<Snapshot, 'sources' | 'destinations' | 'warnings'>,
  parts: Pick<Blueprint, 'moves' | 'unplaced' | 'pinned' | 'preflight' | 'receivingLowerBound' | 'mostPlacedProven'>,
): Blueprint {
  return {
    version: 1,
    plan: { name: loaded.plan.name, file: loaded.file, digest: loaded.digest },
    driver: driver.name,
    policy: settings.policy,
    sources: snap.sources.map((h) => h.name),
    destinations: snap.destinations.map((h) => h.name),
    destinationsUsed: new Set(parts.moves.map((m) => m.destination)).size,
    ...parts,
    warnings: [...loaded.warnings.map((w) => `${w.path}: ${w.message}`), ...snap.warnings],
  };
}

/**
 * Live-migration time from the pre-copy model at the rate one stream gets while its source runs
 * as many as the plan's concurrency lets it (the NIC shared; never above the stream ceiling or
 * the plan's bandwidth cap), plus the driver's fixed cost per migration. A cold move: its local
 * disk at that rate, the guest's shutdown where it runs, and its define and boot (Driver.coldS).
 */
export function estimateSeconds(vm: Vm, settings: Settings, snap: Pick<Snapshot, 'sources' | 'setupS' | 'coldS' | 'streamMibps' | 'perHostMigrations'> & { destinations?: Host[] }, destination?: string, method: Method = 'live', moves?: PlannedLinks): number | null {
  const src = snap.sources.find((h) => h.name === vm.host);
  const dst = destination === undefined ? undefined : snap.destinations?.find((h) => h.name === destination);
  const lim = resolveLimits(settings.concurrency, { sources: src ? [src] : [], destinations: dst ? [dst] : [] }, snap, settings.bandwidthMibps);
  const per = (v: typeof lim.perSource, h: string, planned = Infinity) => Math.max(1, Math.min(lim.total, limitOn(v, h), planned));
  const stream = lim.links?.streamMibps ?? snap.streamMibps ?? Infinity;
  const cap = settings.bandwidthMibps ?? Infinity;
  // Alone on its links, and sharing them with as many as the limits allow at each end.
  const alone = Math.min(cap, stream, nicMibpsOf(src), dst ? nicMibpsOf(dst) : Infinity);
  // A link is shared by no more moves than the plan sends over it, nor than the hosts at its other end may send or take at once.
  const outShare = per(lim.perSource, vm.host, moves ? Math.min(moves.out, moves.receivers * (dst ? limitOn(lim.perDestination, dst.name) : Infinity)) : Infinity);
  const inShare = dst ? per(lim.perDestination, dst.name, moves ? Math.min(moves.in, moves.senders * limitOn(lim.perSource, vm.host)) : Infinity) : 1;
  const shared = Math.min(alone, nicMibpsOf(src) / outShare, dst ? nicMibpsOf(dst) / inShare : Infinity);
  // concurrency: auto holds back a migration where sharing its link, even with a quiet guest, moves memory slower: such a guest runs alone.
  const dirty = vm.dirtyMibps ?? 0;
  const rateMibps = lim.links && !worthSharing([{ dirty: 0, alone }], { dirty, alone }, Math.min(nicMibpsOf(src), dst ? nicMibpsOf(dst) : Infinity), stream) ? alone : shared;
  const disk = vm.storage === 'local' ? (vm.resources.disk_gib ?? 0) * 1024 : 0;
  if (method === 'cold') {
    const fixed = (vm.state === 'shutoff' ? 0 : snap.coldS?.shutdown ?? 0) + (snap.coldS?.boot ?? 0);
    return Math.round((disk / shared + fixed) * 10) / 10;
  }
  const e = estimatePrecopy({
    memoryBytes: (vm.residentMib ?? vm.resources.memory_mib ?? 0) * MiB,
    rateBps: rateMibps * MiB,
    dirtyBps: (vm.dirtyMibps ?? 0) * MiB,
    downtimeMs: settings.maxDowntimeMs,
  });
  // A local disk copies at the shared rate even for a guest too hot to share: nothing it dirties crosses the link meanwhile, so auto lets it share.
  return e.converges ? Math.round((e.durationMs / 1000 + disk / (lim.links ? shared : rateMibps) + (snap.setupS ?? 0)) * 10) / 10 : null;
}
