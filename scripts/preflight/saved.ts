/**
 * Preview and apply share one artifact: `evacuator plan PLAN --out FILE` saves the blueprint,
 * versioned, with the identity of every VM it moves; `evacuator run PLAN --blueprint FILE`
 * executes exactly its moves, after checking that it is this plan's and that the plan and the
 * fleet still allow every one of them (see fromSaved).
 */
import { writeFileSync } from 'node:fs';
import type { Snapshot } from '../fleet/discover.ts';
import type { Driver } from '../fleet/driver.ts';
import { unmovable, type Vm } from '../fleet/types.ts';
import { commandLine, userError } from '../errors.ts';
import { readInput } from '../files.ts';
import type { LoadedPlan } from '../plan/load.ts';
import { coldAllowed, selected, type Settings } from '../plan/settings.ts';
import { explainRefusal } from '../placement/explain.ts';
import { ledgerFor } from '../placement/place.ts';
import { evacuationBlueprint, planMoves, type Blueprint } from './blueprint.ts';
import { checkMoves } from './checks.ts';
import { makeRebalanceBlueprint } from './rebalance.ts';

export const BLUEPRINT_FORMAT = 'evacuator-blueprint';
export const BLUEPRINT_VERSION = 1;

export interface SavedBlueprint {
  format: typeof BLUEPRINT_FORMAT;
  version: typeof BLUEPRINT_VERSION;
  /** When `plan` made it, ISO 8601. */
  createdAt: string;
  blueprint: Blueprint;
  /** Every VM the blueprint names, as discovery saw it: a run checks identity, not names. */
  vms: { name: string; uuid: string; host: string }[];
}

/** The blueprint and the identity of its VMs, written as JSON. */
export function saveBlueprint(file: string, bp: Blueprint, snap: Pick<Snapshot, 'inventory'>): void {
  const named = new Set([...bp.moves.map((m) => m.vm), ...bp.unplaced.map((u) => u.vm), ...bp.pinned.map((p) => p.vm)]);
  const saved: SavedBlueprint = {
    format: BLUEPRINT_FORMAT, version: BLUEPRINT_VERSION, createdAt: new Date().toISOString(), blueprint: bp,
    vms: snap.inventory.vms.filter((v) => named.has(v.name)).map((v) => ({ name: v.name, uuid: v.uuid, host: v.host })),
  };
  try {
    writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`);
  } catch (e) {
    throw userError(`cannot write the blueprint to ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, [], 'give --out a path in a folder that exists and is writable');
  }
}

const remake = (plan: string) => `make a new one from the plan: ${commandLine('evacuator', 'plan', plan, '--out')} FILE`;

/** Read a saved blueprint for this plan; refuses another format, version or plan. */
export function loadBlueprint(file: string, loaded: LoadedPlan): SavedBlueprint {
  let data: unknown;
  const text = readInput(file, 'blueprint', remake(loaded.file));
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw userError(`cannot read blueprint ${file}: ${(e as Error).message}`, [], remake(loaded.file));
  }
  const saved = data as Partial<SavedBlueprint> | null;
  if (!saved || typeof saved !== 'object' || saved.format !== BLUEPRINT_FORMAT || !saved.blueprint || !Array.isArray(saved.vms)) {
    throw userError(`${file} is not an evacuator blueprint`, [], remake(loaded.file));
  }
  if (saved.version !== BLUEPRINT_VERSION) {
    throw userError(`${file} is a blueprint of version ${JSON.stringify(saved.version)}; this evacuator reads version ${BLUEPRINT_VERSION}`, [], remake(loaded.file));
  }
  const bp = saved.blueprint;
  if (bp.plan?.digest !== loaded.digest) {
    const other = bp.plan?.name === loaded.plan.name ? `an earlier version of plan '${bp.plan.name}' (the file changed since)` : `plan '${bp.plan?.name}' (${bp.plan?.file})`;
    throw userError(`${file} was made from ${other}, not from ${loaded.file} as it is now`, [], remake(loaded.file));
  }
  const str = (x: unknown) => typeof x === 'string' && x.length > 0;
  const moves = (bp as { moves?: unknown }).moves;
  if (!Array.isArray(moves) || !moves.every((m) => m && typeof m === 'object' && str(m.vm) && str(m.source) && str(m.destination))) {
    throw userError(`${file}: blueprint.moves must be a list of {vm, source, destination}`, [], remake(loaded.file));
  }
  if (!saved.vms.every((v) => v && typeof v === 'object' && str(v.name) && str(v.uuid) && str(v.host))) {
    throw userError(`${file}: vms must be a list of {name, uuid, host}`, [], remake(loaded.file));
  }
  return saved as SavedBlueprint;
}



/**
 * The blueprint a run executes from a saved one. The file is not trusted: only its assignments
 * (which VM to which destination) and the identity of its VMs are taken from it; everything else
 * (sources, method, estimates, what stays, pinned VMs, warnings) comes from the plan and the fleet
 * as discovered now, and every move is checked again: its VM is the same one, on a source of the
 * plan, in the plan's scope, not pinned, allowed its method; its destination is one of the plan's
 * and has room for all the blueprint puts there; the preflight passes. Any move that no longer
 * holds refuses the whole run (exit 2) before anything is touched. A resumed run skips the moves
 * its earlier runs finished (done: VMs now on their planned destination).
 */
export async function fromSaved(saved: SavedBlueprint, file: string, seen: Snapshot, loaded: LoadedPlan, settings: Settings, driver: Driver, done: Set<string> = new Set()): Promise<{ snap: Snapshot; bp: Blueprint }> {
  const refuse = (problems: string[]) => userError(`the fleet or the plan no longer allows blueprint ${file}; ${problems.length} move(s) do not hold:\n  ${problems.slice(0, 50).join('\n  ')}${problems.length > 50 ? `\n  ... and ${problems.length - 50} more` : ''}`, [],
    `nothing was touched${done.size > 0 || saved.blueprint.moves.some((m) => done.has(m.vm)) ? ' by this run (a resume first settles what the killed run left in flight)' : ''}; ${remake(loaded.file)}`);
  if (settings.kind === 'rebalance') return rebalanceFromSaved(saved, seen, loaded, settings, driver, refuse);
  const now = new Map(seen.inventory.vms.map((v) => [v.name, v]));
  const then = new Map(saved.vms.map((v) => [v.name, v]));
  const sources = new Set(settings.sources);
  const destinations = new Map(seen.destinations.map((h) => [h.name, h]));
  const problems: string[] = [];
  const listed = new Set<string>();
  const moving: { vm: Vm; destination: string }[] = [];
  for (const m of saved.blueprint.moves) {
    const vm = now.get(m.vm);
    const was = then.get(m.vm);
    if (listed.has(m.vm)) problems.push(`${m.vm}: listed twice`);
    else if (!vm) problems.push(`${m.vm}: no longer in the fleet`);
    else if (!was) problems.push(`${m.vm}: the blueprint does not say which VM of that name it means (no entry in its vms)`);
    else if (was.uuid !== vm.uuid) problems.push(`${m.vm}: another VM of that name now (uuid ${vm.uuid}, was ${was.uuid})`);
    else if (done.has(m.vm) && vm.host === m.destination) {
      // Moved by an earlier run of this plan: nothing left to do.
    } else if (!sources.has(vm.host)) problems.push(`${m.vm}: on ${vm.host}, which is not a source of the plan`);
    else if (vm.host !== m.source) problems.push(`${m.vm}: now on ${vm.host}, not on ${m.source}`);
    else if (!selected(settings, vm.name)) problems.push(`${m.vm}: not among the VMs the plan moves (vms)`);
    else if (settings.pinned.includes(vm.name)) problems.push(`${m.vm}: pinned by the plan`);
    else if (unmovable(vm.state)) problems.push(`${m.vm}: ${unmovable(vm.state)}`);
    else if (settings.mode === 'cold' && vm.state !== 'shutoff' && !coldAllowed(settings, vm.name)) problems.push(`${m.vm}: mode is cold and the plan does not allow shutting it down`);
    else if (!destinations.has(m.destination)) problems.push(`${m.vm}: ${m.destination} is not a destination now (not in the plan's scope, down, or fenced)`);
    else if (settings.assign[vm.name] && settings.assign[vm.name] !== m.destination) problems.push(`${m.vm}: the plan assigns it to ${settings.assign[vm.name]}`);
    else moving.push({ vm, destination: m.destination });
    listed.add(m.vm);
  }
  const inScope = seen.onSources.filter((v) => selected(settings, v.name) && !done.has(v.name));
  const movingNames = new Set(moving.map((m) => m.vm.name));
  const pinned = inScope.filter((v) => settings.pinned.includes(v.name));
  const staying = inScope.filter((v) => !movingNames.has(v.name) && !settings.pinned.includes(v.name));
  if (problems.length === 0) {
    // Room for the whole blueprint at once, through the same books as placement (every other VM of the sources stays).
    const ledger = ledgerFor({ vms: moving.map((m) => m.vm), destinations: seen.destinations, sources: seen.sources, residents: [...seen.residents, ...pinned, ...staying], settings });
    for (const { vm, destination } of moving) {
      const why = ledger.refuse([vm], destinations.get(destination)!);
      if (why) problems.push(`${vm.name}: ${destination} no longer takes it (${explainRefusal(why)})`);
      else ledger.commit(vm, destination);
    }
  }
  if (problems.length === 0 && moving.length > 0) {
    const answers = await checkMoves(moving, seen.inventory, driver, settings.overcommit);
    moving.forEach((m, i) => {
      const bad = answers[i].filter((c) => !c.ok);
      if (bad.length > 0) problems.push(`${m.vm.name}: preflight to ${m.destination}: ${bad.map((c) => `${c.check}: ${c.detail}`).join('; ')}`);
    });
  }
  if (problems.length > 0) throw refuse(problems);
  const stayReason = (name: string) => {
    const u = saved.blueprint.unplaced?.find?.((x) => x?.vm === name);
    const texts = Array.isArray(u?.reasons) ? u.reasons.map((r) => r?.text).filter((t): t is string => typeof t === 'string') : [];
    return texts.length > 0 ? texts.join('; ') : `not moved by blueprint ${file}`;
  };
  const moves = planMoves(moving, settings, seen);
  const bp = evacuationBlueprint(loaded, driver, settings, seen, {
    moves,
    unplaced: staying.map((v) => ({ vm: v.name, source: v.host, reasons: [{ kind: 'avoid' as const, text: stayReason(v.name), hosts: [] }] })).sort((a, b) => a.vm.localeCompare(b.vm)),
    pinned: pinned.map((v) => ({ vm: v.name, host: v.host })),
    preflight: { ok: true, rounds: 1, checks: moves.map((m) => ({ vm: m.vm, destination: m.destination, ok: true, failed: [] })) },
  });
  return { snap: { ...seen, onSources: inScope }, bp };
}

/**
 * A rebalance's blueprint: planned again from the fleet as it is now, and run only if that gives
 * exactly the saved moves (its target and its summary are the planner's, never the file's).
 */
async function rebalanceFromSaved(saved: SavedBlueprint, seen: Snapshot, loaded: LoadedPlan, settings: Settings, driver: Driver, refuse: (p: string[]) => Error) {
  const fresh = await makeRebalanceBlueprint(loaded, settings, seen, driver);
  const key = (m: { vm: string; source: string; destination: string }) => `${m.vm}: ${m.source} -> ${m.destination}`;
  const want = new Set(saved.blueprint.moves.map(key));
  const got = new Set(fresh.bp.moves.map(key));
  const problems = [
    ...[...want].filter((k) => !got.has(k)).map((k) => `${k} is no longer what the planner gives`),
    ...[...got].filter((k) => !want.has(k)).map((k) => `${k} is needed now and not in the blueprint`),
  ];
  if (problems.length > 0) throw refuse(problems);
  return fresh;
}
