/** The plan with every default filled in: what placement and the runner actually use. */
import type { Resources } from '../fleet/types.ts';
import type { EvacuationPlan } from './plan-types.ts';

export type Mode = 'live' | 'cold' | 'live-then-cold';

export interface Group {
  name: string;
  policy: 'anti-affinity' | 'affinity';
  members: string[];
}

export interface Settings {
  name: string;
  kind: 'evacuate' | 'rebalance';
  /** A rebalance's target and budget (bytes). */
  rebalance?: { target: { ceiling?: Resources; spread?: Resources; freeHosts?: number }; budget: { migrations?: number; bytes?: number } };
  sources: string[];
  policy: 'pack' | 'spread';
  seed: number;
  /** Placement search effort; undefined: the placement's default. */
  effort?: number;
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
  concurrency: { total: number; perSource: number; perDestination: number };
  timeoutSPerGib: number;
  maxDowntimeMs: number;
  autoConverge: boolean;
  /** When the maintenance window closes (epoch ms), if the plan says. */
  windowEnd?: number;
  postCopy: boolean;
  bandwidthMibps?: number;
  cold: { allow: string[]; shutdownTimeoutS: number; forceOff: boolean };
}

export const DEFAULTS = {
  overcommit: { vcpu: 4, memory_mib: 1, disk_gib: 1 },
  reserve: { memory_mib: 512 },
  concurrency: { total: 4, perSource: 2, perDestination: 2 },
  timeoutSPerGib: 800,
  maxDowntimeMs: 500,
  shutdownTimeoutS: 120,
} as const;

export function settingsOf(plan: EvacuationPlan): Settings {
  const p = plan.placement ?? {};
  const m = plan.migration ?? {};
  const c = m.concurrency ?? {};
  const r = plan.rebalance;
  return {
    name: plan.name,
    kind: plan.kind ?? 'evacuate',
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
    sources: plan.sources ?? [],
    policy: p.policy ?? 'pack',
    seed: p.seed ?? 0,
    ...(p.effort !== undefined ? { effort: p.effort } : {}),
    overcommit: { ...DEFAULTS.overcommit, ...p.overcommit },
    reserve: { ...DEFAULTS.reserve, ...p.reserve },
    maxUtilization: p.max_utilization ?? 1,
    pinned: p.pinned ?? [],
    ...(plan.vms ? { select: plan.vms } : {}),
    assign: p.assign ?? {},
    groups: p.groups ?? [],
    mode: m.mode ?? 'live-then-cold',
    concurrency: {
      total: c.total ?? DEFAULTS.concurrency.total,
      perSource: c.per_source ?? DEFAULTS.concurrency.perSource,
      perDestination: c.per_destination ?? DEFAULTS.concurrency.perDestination,
    },
    timeoutSPerGib: m.completion_timeout_s_per_gib ?? DEFAULTS.timeoutSPerGib,
    maxDowntimeMs: m.max_downtime_ms ?? DEFAULTS.maxDowntimeMs,
    autoConverge: m.auto_converge ?? false,
    ...(m.window_end !== undefined ? { windowEnd: Date.parse(m.window_end) } : {}),
    postCopy: m.post_copy ?? false,
    ...(m.bandwidth_mibps !== undefined ? { bandwidthMibps: m.bandwidth_mibps } : {}),
    cold: {
      allow: m.cold?.allow ?? [],
      shutdownTimeoutS: m.cold?.shutdown_timeout_s ?? DEFAULTS.shutdownTimeoutS,
      forceOff: m.cold?.force_off ?? false,
    },
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

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}
