/**
 * The waves of a rolling maintenance, planned on a snapshot of the fleet: which hosts go down
 * together and in what order, each wave proven to fit on the rest by the same placement a run
 * uses, the roll played forward wave by wave (each wave's VMs counted where they land).
 *
 * Rules of a wave: never two hosts with one value of the failure-domain label, never two hosts
 * that hold members of one anti-affinity group (Ganeti's hroller colours the same graph), and
 * every VM of its hosts placed onto the hosts not in it, under every placement rule.
 *
 * Each VM moved once: hosts already maintained and hosts outside the roll are "final"; a wave's
 * VMs go there first (placement.prefer), elsewhere only when the final hosts cannot take them,
 * and those are counted (they move again when their new host's turn comes). The first wave has
 * no maintained host yet, so it is one host (the least loaded) unless the hosts outside the roll
 * can take more; with wave: auto each later wave grows while its VMs still fit on final hosts.
 */
import type { Host, Vm } from '../fleet/types.ts';
import { unmovable } from '../fleet/types.ts';
import { placePreferring } from '../placement/place.ts';
import type { Settings } from '../plan/settings.ts';

export interface WaveInput {
  hosts: Host[];
  vms: Vm[];
  /** Hosts to maintain, in the plan's order (sources, then the selector's by name). */
  roll: string[];
  /** Hosts that may receive VMs (the plan's destinations, the roll's hosts included). */
  pool: string[];
  settings: Settings;
  wave: number | 'auto';
  maxWave: number;
  failureDomain?: string;
  order: 'least-loaded' | 'listed';
  /** Hosts already maintained (a resumed roll). */
  done?: string[];
  /** Plan only the next wave (a run plans each wave on the fleet as it is then). */
  next?: boolean;
  /** return: origin: once a wave is maintained, the VMs that started on its hosts go back to them. */
  returnToOrigin?: boolean;
  /** VMs that must not move (placement.pinned), and what their host's turn does with them (rolling.pinned). */
  pinned?: ReadonlySet<string>;
  pinnedPolicy?: 'skip-host' | 'shutdown-restart';
}

export interface PlannedWave {
  hosts: string[];
  /** VMs this wave moves, and of those the ones that land on a host not yet maintained (they will move again). */
  moves: { vm: string; from: string; to: string; final: boolean }[];
  /** Why the wave holds fewer hosts than it could (conflicts, capacity), for plan's output. */
  notes: string[];
  /** return: origin: the VMs that go back to this wave's hosts once they are maintained. */
  returns: { vm: string; from: string; to: string }[];
}

export interface RollPlan {
  waves: PlannedWave[];
  /** Hosts the roll cannot take down, with why (a VM of theirs fits nowhere). */
  blocked: { host: string; why: string }[];
  /** Hosts left out of the roll, with why (they hold pinned VMs and rolling.pinned is skip-host). */
  skipped: { host: string; why: string }[];
  /** With shutdown-restart: the pinned VMs each wave's hosts shut down and start again, by host. */
  restarted: Record<string, string[]>;
  /** Moves in all, and how many of them a VM makes a second time or more. */
  moves: number;
  again: number;
  /** VMs that move at least once. */
  vmsMoved: number;
}

/** The search a wave's proof may spend (the run's own placement uses the plan's effort). */
const TRIAL_EFFORT = 300_000;
/** Hosts a wave tries that do not fit, before it is closed as it is. */
const MISSES = 3;

/** Anti-affinity groups of a VM: its own label and the plan's groups. */
function antiGroups(settings: Settings): (vm: Vm) => string[] {
  const byMember = new Map<string, string[]>();
  for (const g of settings.groups) if (g.policy === 'anti-affinity') for (const m of g.members) byMember.set(m, [...byMember.get(m) ?? [], g.name]);
  return (vm) => [...(vm.antiAffinity ? [`vm:${vm.antiAffinity}`] : []), ...(byMember.get(vm.name) ?? []).map((g) => `plan:${g}`)];
}

/** Plan every wave. Pure: the same input gives the same waves. */
export function planWaves(input: WaveInput): RollPlan {
  const { settings } = input;
  const hostOf = new Map(input.hosts.map((h) => [h.name, h]));
  const where = new Map(input.vms.map((v) => [v.name, v.host]));
  const origin = new Map(where);
  const groupsOf = antiGroups(settings);
  const rolled = new Set(input.roll);
  const maintained = new Set(input.done ?? []);
  const pool = new Set(input.pool);
  const moveCount = new Map<string, number>();
  const waves: PlannedWave[] = [];
  const blocked: { host: string; why: string }[] = [];
  let onHost = new Map<string, Vm[]>();
  const regroup = () => {
    onHost = new Map();
    for (const v of input.vms) onHost.set(where.get(v.name)!, [...onHost.get(where.get(v.name)!) ?? [], v]);
  };
  regroup();
  const vmsOn = (h: string) => onHost.get(h) ?? [];
  const domain = (h: string) => {
    const labels = hostOf.get(h)?.labels;
    return input.failureDomain && labels && Object.hasOwn(labels, input.failureDomain) ? labels[input.failureDomain] : undefined;
  };
  let left = input.roll.filter((h) => !maintained.has(h) && hostOf.has(h));
  const pinned = input.pinned ?? new Set<string>();
  const pinnedOn = (h: string) => vmsOn(h).filter((v) => pinned.has(v.name)).map((v) => v.name);
  const skipped: RollPlan['skipped'] = [];
  const restarted: RollPlan['restarted'] = {};
  if (input.pinnedPolicy !== 'shutdown-restart') {
    for (const h of left.filter((x) => pinnedOn(x).length > 0)) {
      skipped.push({ host: h, why: `it holds pinned VMs (${pinnedOn(h).join(', ')}) and rolling.pinned is skip-host` });
    }
    left = left.filter((h) => pinnedOn(h).length === 0);
  } else {
    // shutdown-restart shuts down running guests and leaves shut-off ones off; any other state (paused: it would come back
    // running, not paused; crashed, suspended, busy) cannot go through a maintenance as it is.
    const stuck = (h: string) => vmsOn(h).filter((v) => pinned.has(v.name) && !(v.state === 'running' || v.state === 'shutoff'));
    for (const h of left.filter((x) => stuck(x).length > 0)) {
      skipped.push({ host: h, why: `pinned VMs on it cannot be shut down cleanly and started again as they are: ${stuck(h).map((v) => `${v.name} is ${v.state}`).join(', ')} (resume or start it, or unpin it, and run the roll again)` });
    }
    left = left.filter((h) => stuck(h).length === 0);
  }

  /** Place the VMs of these hosts on the rest of the pool, final hosts first; undefined if one fits nowhere. */
  const tryWave = (wave: string[]) => {
    const inWave = new Set(wave);
    const moving = input.vms.filter((v) => inWave.has(where.get(v.name)!) && !unmovable(v.state) && !pinned.has(v.name)).map((v) => ({ ...v, host: where.get(v.name)! }));
    const destinations = input.hosts.filter((h) => pool.has(h.name) && !inWave.has(h.name));
    const residents = input.vms.filter((v) => !inWave.has(where.get(v.name)!)).map((v) => ({ ...v, host: where.get(v.name)! }));
    const final = destinations.filter((h) => maintained.has(h.name) || !rolled.has(h.name)).map((h) => h.name);
    const r = placePreferring({
      vms: moving, destinations, sources: wave.map((h) => hostOf.get(h)!), residents,
      // A proof, not the run's placement (the run places again, with the plan's effort): a smaller search.
      settings: { ...settings, effort: Math.min(settings.effort, TRIAL_EFFORT) },
    }, final);
    const finals = new Set(final);
    return {
      moves: r.assignments.map((a) => ({ vm: a.vm, from: a.source, to: a.destination, final: finals.has(a.destination) })),
      unplaced: r.unplaced.map((u) => ({ vm: u.vm, host: u.source, why: u.reasons.map((x) => x.text).join('; ') })),
    };
  };
  const conflicts = (h: string, wave: string[]) => {
    const d = domain(h);
    if (d !== undefined && wave.some((w) => domain(w) === d)) return `${input.failureDomain}=${d} already in the wave`;
    const mine = new Set(vmsOn(h).flatMap(groupsOf));
    for (const w of wave) {
      const shared = vmsOn(w).flatMap(groupsOf).find((g) => mine.has(g));
      if (shared) return `it and ${w} both hold members of anti-affinity group ${shared.replace(/^(vm|plan):/, '')}`;
    }
    return undefined;
  };

  while (left.length > 0) {
    const load = new Map(left.map((h) => [h, vmsOn(h).reduce((a, v) => a + (v.resources.memory_mib ?? 0), 0)]));
    const ordered = input.order === 'listed' ? left : [...left].sort((a, b) => load.get(a)! - load.get(b)! || input.roll.indexOf(a) - input.roll.indexOf(b));
    let misses = 0;
    const alone = new Map<string, string>();
    const cap = input.wave === 'auto' ? input.maxWave : input.wave;
    const wave: string[] = [];
    let best: ReturnType<typeof tryWave> | undefined;
    const notes: string[] = [];
    for (const h of ordered) {
      if (wave.length >= cap || misses >= MISSES) break;
      const clash = conflicts(h, wave);
      if (clash) {
        notes.push(`${h} waits: ${clash}`);
        continue;
      }
      const got = tryWave([...wave, h]);
      if (got.unplaced.length > 0) {
        if (wave.length === 0) {
          // Not emptiable now; maybe once others moved. Blocked only when no host of the rest is.
          alone.set(h, got.unplaced.map((u) => `${u.vm}: ${u.why}`).join('; '));
          continue;
        }
        notes.push(`${h} waits: with it the wave's VMs would not all fit on the other hosts`);
        misses++;
        continue;
      }
      // auto: a wave after the first grows only while its VMs all land on final hosts (each moves once).
      if (input.wave === 'auto' && wave.length > 0 && got.moves.some((m) => !m.final)) {
        notes.push(`${h} waits: with it some VMs would land on hosts not yet maintained`);
        misses++;
        continue;
      }
      wave.push(h);
      best = got;
      // The first wave of an auto roll with no final host to land on stays one host: its VMs move again.
      if (input.wave === 'auto' && got.moves.some((m) => !m.final)) break;
    }
    if (wave.length === 0) {
      for (const h of left) blocked.push({ host: h, why: alone.get(h) ?? 'no wave could take it (conflicts with every other host left)' });
      break;
    }
    for (const m of best!.moves) {
      where.set(m.vm, m.to);
      moveCount.set(m.vm, (moveCount.get(m.vm) ?? 0) + 1);
    }
    for (const h of wave) {
      maintained.add(h);
      const down = vmsOn(h).filter((v) => pinned.has(v.name) && v.state === 'running').map((v) => v.name);
      if (down.length > 0) restarted[h] = down;
    }
    // return: origin: the wave's own VMs come back from wherever they are.
    const returns: PlannedWave['returns'] = [];
    if (input.returnToOrigin) {
      for (const v of input.vms) {
        const home = origin.get(v.name)!;
        if (wave.includes(home) && where.get(v.name) !== home) {
          returns.push({ vm: v.name, from: where.get(v.name)!, to: home });
          where.set(v.name, home);
          moveCount.set(v.name, (moveCount.get(v.name) ?? 0) + 1);
        }
      }
    }
    regroup();
    left = left.filter((h) => !wave.includes(h));
    waves.push({ hosts: wave, moves: best!.moves, notes, returns });
    if (input.next) break;
  }
  const moves = waves.reduce((a, w) => a + w.moves.length + w.returns.length, 0);
  return { waves, blocked, skipped, restarted, moves, again: moves - moveCount.size, vmsMoved: moveCount.size };
}
