/**
 * The one event stream: the console, the journal, CI annotations and the --events file all read
 * it. A run's start, its blueprint and its end are events too: the journal is nothing but this
 * stream written down, so what a resume or `evacuator report` reads is what every sink saw.
 */
import type { Inventory, Resources, Vm } from './fleet/types.ts';
import type { FailReason, HostProof, Method, Move, Progress, VmResult } from './model.ts';
import type { Unplaced } from './placement/place.ts';
import type { RebalanceSummary } from './preflight/blueprint.ts';

export type { Method };
export type StageName = 'plan' | 'recover' | 'discover' | 'place' | 'preflight' | 'migrate' | 'verify' | 'report' | 'wave';

/** Who runs: the plan, the run's id, and the process (a resume checks whether it is still alive). */
export interface RunStart {
  kind: 'run-start';
  run: string;
  plan: { name: string; file: string; digest: string };
  driver: string;
  controller: string;
  pid: number;
  /** When that pid's process started (Linux: /proc/PID/stat), so a reused pid is not taken for the run. */
  pidStart?: string;
  /** Continues the runs before it (evacuator run --resume). */
  resumed: boolean;
  /** Wall-clock time the run started, ISO 8601. */
  at: string;
  /** The driver's clock at the start (the evacuation's time zero; absent in journals before it was recorded: 0). */
  t?: number;
}

/** The blueprint this run executes, with the VMs as discovery saw them (a resume needs their disks and states). */
export interface Planned {
  kind: 'planned'; t: number; moves: Move[]; vms: Vm[]; unplaced: Unplaced[]; pinned: { vm: string; host: string }[];
  sources: string[]; destinations: string[]; warnings: string[]; rebalance?: RebalanceSummary;
  /** The fleet as discovery saw it (the report's "before" is the first run's). */
  inventory: Inventory;
  /** What each source and destination may hold under the plan: (capacity - reserve) x overcommit. */
  limits?: Record<string, Resources>;
}

/** Whether a rebalance ended under its target, judged on the fleet after the run. */
export interface RebalanceJudgement {
  reached: boolean;
  shortfall: string[];
  after: { host: string; utilization: Resources }[];
}

/** How a run ended: always the last event of a run, whatever happened in it. */
export interface RunEnd {
  kind: 'run-end'; t: number; exitCode: number; interrupted: boolean;
  proofs?: HostProof[]; after?: Inventory | null; rebalance?: RebalanceJudgement;
  /** Wall-clock time the run ended, ISO 8601. */
  at: string;
  /** A run refused or stopped by an error before its end: the message. */
  error?: string;
}

export type EvacEvent =
  | RunStart
  | Planned
  | RunEnd
  | { kind: 'stage'; t: number; stage: StageName; detail?: string; /** migrate: how many moves it starts with. */ moves?: number }
  | { kind: 'move-start'; t: number; vm: string; source: string; destination: string; method: Method; attempt: number }
  | { kind: 'progress'; t: number; progress: Progress }
  | {
    kind: 'move-end'; t: number; vm: string; source: string; destination: string; method: Method; attempt: number;
    outcome: 'ok' | FailReason; detail: string; bytes: number; downtimeMs: number;
    /** When the attempt started, and where the VM was found after it (the journal rebuilds attempts from this). */
    start: number; foundOn: string | null; failedHost?: string;
  }
  /** An attempt the previous process did not see end, settled on resume by looking at both hosts. */
  | { kind: 'recovered'; t: number; vm: string; source: string; destination: string; method: Method; found: string | null; action: string }
  /** A VM's final result in this run. */
  | { kind: 'vm-done'; t: number; result: VmResult }
  | { kind: 'fallback'; t: number; vm: string; to: 'cold' | 'another destination'; why: string }
  | { kind: 'vm-left'; t: number; vm: string; source: string; why: string }
  /** scoped: the plan moves only some VMs (vms): empty of those, whatever else runs there. */
  | { kind: 'host-empty'; t: number; host: string; empty: boolean; left: string[]; scoped?: true }
  | { kind: 'warning'; t: number; message: string }
  /** A rolling maintenance's own step, as its journal has it (roll-start, wave-start, step-end, host-done, pinned-stop, roll-end, …). */
  | { kind: 'roll'; t: number; line: { kind: string; seq: number; at: string; t: number } & Record<string, unknown> };

export type EventSink = (e: EvacEvent) => void;

/** One sink that feeds several, in order. */
export const fanOut = (...sinks: (EventSink | undefined)[]): EventSink => (e) => {
  for (const s of sinks) s?.(e);
};
