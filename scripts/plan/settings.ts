/** The plan with every default filled in: what placement and the runner actually use. */
import type { Resources } from '../fleet/types.ts';
import { schemaDefault, withDefaults } from './defaults.ts';
import type { EvacuationPlan, Limit } from './plan-types.ts';

export type Mode = 'live' | 'cold' | 'live-then-cold';

export interface Group {
  name: string;
  policy: 'anti-affinity' | 'affinity';
  members: string[];
}

export interface Settings {
  name: string;
  kind: 'evacuate' | 'rebalance' | 'rolling';
  /** A rebalance's target and budget (bytes). */
  rebalance?: { target: { ceiling?: Resources; spread?: Resources; freeHosts?: number }; budget: { migrations?: number; bytes?: number } };
  sources: string[];
  policy: 'pack' | 'spread';
  /** Destinations filled first (placement.prefer): the others take only what these cannot. */
  prefer: string[];
  seed: number;
  /** Placement search effort (work units, see placement/place.ts). */
  effort: number;
  overcommit: Resources;
  reserve: Resources;
  maxUtilization: number;
  pinned: string[];
  /** Only these VMs move (names or globs); undefined: every VM on the sources. */
  select?: string[];
  /** VM name -> the one destination it may go to. */
  assign: Record<string, string>;
  groups: Group[];
  mode: Mode;
  /** Each a number, or auto (derived from the link model when the run starts: runner/limits.ts). */
  concurrency: { total: Limit; perSource: Limit; perDestination: Limit };
  timeoutSPerGib: number;
  maxDowntimeMs: number;
  autoConverge: boolean;
  /** When the maintenance window closes (epoch ms), if the plan says. */
  windowEnd?: number;
  postCopy: boolean;
  bandwidthMibps?: number;
  cold: { allow: string[]; shutdownTimeoutS: number; forceOff: boolean };
}

/** Overcommit and reserve are maps merged over the schema's default map, resource by resource. */
const OVERCOMMIT = '/definitions/Placement/properties/overcommit';
const RESERVE = '/definitions/Placement/properties/reserve';

/**
 * The plan's settings, every default taken from the schema: works on a plan from loadPlan and
 * on one built in code alike. Each `!` is a field the schema gives a default.
 */
export function settingsOf(given: EvacuationPlan): Settings {
  const plan = withDefaults(given);
  const p = plan.placement!;
  const m = plan.migration!;
  const c = m.concurrency!;
  const cold = m.cold!;
  const r = plan.rebalance;
  return {
    name: plan.name,
    kind: plan.kind!,
    ...(r ? {
      rebalance: {
        target: {
          ...(r.target.max_utilization ? { ceiling: r.target.max_utilization } : {}),
          ...(r.target.max_spread ? { spread: r.target.max_spread } : {}),
          ...(r.target.free_hosts ? { freeHosts: r.target.free_hosts } : {}),
        },
        budget: {
          ...(r.budget?.migrations ? { migrations: r.budget.migrations } : {}),
          ...(r.budget?.gib ? { bytes: r.budget.gib * 2 ** 30 } : {}),
        },
      },
    } : {}),
    // A rebalance has no sources.
    sources: plan.sources ?? [],
    policy: p.policy!,
    prefer: p.prefer ?? [],
    seed: p.seed!,
    effort: p.effort!,
    overcommit: { ...schemaDefault<Resources>(OVERCOMMIT), ...p.overcommit },
    reserve: { ...schemaDefault<Resources>(RESERVE), ...p.reserve },
    maxUtilization: p.max_utilization!,
    pinned: p.pinned!,
    ...(plan.vms ? { select: plan.vms } : {}),
    // No prototype: a VM named constructor or __proto__ is assigned only where the plan says.
    assign: Object.assign(Object.create(null) as Record<string, string>, p.assign),
    groups: p.groups!,
    mode: m.mode!,
    concurrency: { total: c.total!, perSource: c.per_source!, perDestination: c.per_destination! },
    timeoutSPerGib: m.completion_timeout_s_per_gib!,
    maxDowntimeMs: m.max_downtime_ms!,
    autoConverge: m.auto_converge!,
    ...(m.window_end !== undefined ? { windowEnd: Date.parse(m.window_end) } : {}),
    postCopy: m.post_copy!,
    ...(m.bandwidth_mibps !== undefined ? { bandwidthMibps: m.bandwidth_mibps } : {}),
    cold: { allow: cold.allow!, shutdownTimeoutS: cold.shutdown_timeout_s!, forceOff: cold.force_off! },
  };
}

/** Whether the plan allows this VM to be shut down (names or globs with * and ?). */
export function coldAllowed(settings: Settings, vm: string): boolean {
  return matchesAny(settings.cold.allow, vm);
}

/** Whether the plan moves this VM at all (its vms list, when it has one). */
export function selected(settings: Settings, vm: string): boolean {
  return settings.select === undefined || matchesAny(settings.select, vm);
}

function matchesAny(patterns: string[], name: string): boolean {
  return patterns.some((pattern) => globToRegExp(pattern).test(name));
}

/**
 * A `vms` pattern as a regular expression: `*` any run of characters, `?` one, `\\` before a
 * character takes it as itself (so `glob\\*` is the VM named `glob*`). Everything else is literal.
 */
export function globToRegExp(glob: string): RegExp {
  let body = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '\\' && i + 1 < glob.length) body += escapeRe(glob[++i]);
    else if (ch === '*') body += '.*';
    else if (ch === '?') body += '.';
    else body += escapeRe(ch);
  }
  return new RegExp(`^${body}$`, 's');
}

const escapeRe = (ch: string) => ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A name as a `vms` pattern that matches exactly it (what moveback writes). */
export function exactPattern(name: string): string {
  return name.replace(/[\\*?]/g, '\\$&');
}

/** The `vms` patterns that select none of these VM names (a pattern that selects nothing is a mistake in the plan). */
export function emptyPatterns(settings: Settings, names: Iterable<string>): string[] {
  const all = [...names];
  return (settings.select ?? []).filter((p) => !all.some((n) => globToRegExp(p).test(n)));
}
