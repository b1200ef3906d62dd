/**
 * Preview and apply share one artifact: `evacuator plan PLAN --out FILE` saves the blueprint,
 * versioned, with the identity of every VM it moves; `evacuator run PLAN --blueprint FILE`
 * executes exactly it, after checking that it is this plan's and that the fleet still allows
 * every move (the VM is where it was, the destination is still one and still has room).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Snapshot } from '../fleet/discover.ts';
import { userError } from '../errors.ts';
import type { LoadedPlan } from '../plan/load.ts';
import type { Settings } from '../plan/settings.ts';
import { explainRefusal } from '../placement/explain.ts';
import { ledgerFor } from '../placement/place.ts';
import type { Blueprint } from './blueprint.ts';

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

const remake = (plan: string) => `make a new one from the plan: evacuator plan ${plan} --out FILE`;

/** Read a saved blueprint for this plan; refuses another format, version or plan. */
export function loadBlueprint(file: string, loaded: LoadedPlan): SavedBlueprint {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw userError(`cannot read blueprint ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, [], remake(loaded.file));
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
  return saved as SavedBlueprint;
}

/**
 * The snapshot a saved blueprint runs on, from the fleet as discovered now; refuses (exit 2,
 * nothing touched) when a move no longer holds: its VM gone, replaced or elsewhere, its
 * destination no longer one, or without room for everything the blueprint puts there.
 */
export function checkSaved(saved: SavedBlueprint, file: string, seen: Snapshot, settings: Settings): Snapshot {
  const bp = saved.blueprint;
  const now = new Map(seen.inventory.vms.map((v) => [v.name, v]));
  const then = new Map(saved.vms.map((v) => [v.name, v]));
  const destinations = new Map(seen.destinations.map((h) => [h.name, h]));
  const problems: string[] = [];
  for (const m of bp.moves) {
    const vm = now.get(m.vm);
    const was = then.get(m.vm);
    if (!vm) problems.push(`${m.vm}: no longer in the fleet`);
    else if (was && was.uuid !== vm.uuid) problems.push(`${m.vm}: another VM of that name now (uuid ${vm.uuid}, was ${was.uuid})`);
    else if (vm.host !== m.source) problems.push(`${m.vm}: now on ${vm.host}, not on ${m.source}`);
    else if (!destinations.has(m.destination)) problems.push(`${m.vm}: ${m.destination} is no longer a destination (down, fenced, or out of the plan's scope)`);
  }
  const named = new Set([...bp.moves.map((m) => m.vm), ...bp.unplaced.map((u) => u.vm), ...bp.pinned.map((p) => p.vm)]);
  const onSources = seen.inventory.vms.filter((v) => named.has(v.name));
  const sourceNames = new Set(bp.sources);
  const scope = new Set(bp.destinations);
  const snap: Snapshot = {
    ...seen,
    sources: seen.inventory.hosts.filter((h) => sourceNames.has(h.name)),
    destinations: seen.destinations.filter((h) => scope.has(h.name)),
    onSources,
    residents: seen.inventory.vms.filter((v) => scope.has(v.host) && !named.has(v.name)),
  };
  if (problems.length === 0) {
    // Room for the whole blueprint at once, through the same books as placement.
    const pinned = onSources.filter((v) => bp.pinned.some((p) => p.vm === v.name));
    const moving = bp.moves.map((m) => now.get(m.vm)!);
    const ledger = ledgerFor({ vms: moving, destinations: snap.destinations, sources: snap.sources, residents: [...snap.residents, ...pinned], settings });
    for (const m of bp.moves) {
      const vm = now.get(m.vm)!;
      const why = ledger.refuse([vm], destinations.get(m.destination)!);
      if (why) problems.push(`${m.vm}: ${m.destination} no longer takes it (${explainRefusal(why)})`);
      else ledger.commit(vm, m.destination);
    }
  }
  if (problems.length > 0) {
    throw userError(`the fleet changed since blueprint ${file} was made; ${problems.length} move(s) no longer hold:\n  ${problems.join('\n  ')}`, [],
      `nothing was touched; ${remake(bp.plan.file)}`);
  }
  return snap;
}
