/**
 * The one interface every fleet driver (sim, libvirt, openstack) implements. Methods return typed
 * outcomes; they throw only on bugs. Per-VM failures are data that the runner and the report use.
 */
import type { FailReason, Method, Progress } from '../model.ts';
import type { Fence, Inventory, Vm, VmState } from './types.ts';

/** Time as the driver sees it: wall time for real fleets, virtual time for the simulator. */
export interface Clock {
  /** Milliseconds since the run began. */
  now(): number;
  /** Resolves after ms, or early (without rejecting) when the signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Wall time since origin (epoch ms): a resumed run's clock goes on from the first run's start. */
export const wallClock = (t0 = Date.now()): Clock => ({
  now: () => Date.now() - t0,
  sleep: (ms, signal) => new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    // The listener goes when the sleep ends either way: a long-lived signal collects none.
    const wake = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', wake);
      resolve();
    };
    const t = setTimeout(wake, ms);
    signal?.addEventListener('abort', wake, { once: true });
  }),
});

export interface Failure {
  ok: false;
  reason: FailReason;
  detail: string;
  /** The host that failed, when one did. */
  host?: string;
  /**
   * The driver's call threw or hung (see fleet/guard.ts): what it left was settled by recovery,
   * and the VM is not to be tried again in this run, by any method.
   */
  unsettled?: true;
}

export type Outcome<T> = ({ ok: true } & T) | Failure;

/** A failure, with no bytes moved (usable as any outcome, a migration's too). */
export function failure(reason: FailReason, detail: string, host?: string): Failure & { bytes: number } {
  return { ok: false, reason, detail, ...(host ? { host } : {}), bytes: 0 };
}

export interface MigrationStats {
  /** Bytes sent over the network. */
  bytes: number;
  /** Time the guest was not running, ms. */
  downtimeMs: number;
  /** Pre-copy rounds (live only). */
  rounds?: number;
  /** How it finished, when that is worth telling (for example force-completed). */
  note?: string;
}

export type MigrationOutcome = Outcome<MigrationStats> & { bytes?: number };

export interface LiveRequest {
  vm: Vm;
  destination: string;
  maxDowntimeMs: number;
  /** Throttle the guest's vCPUs if it dirties memory faster than the link sends it. */
  autoConverge?: boolean;
  /** Switch to post-copy after the first pre-copy pass (cannot be aborted after the switch). */
  postCopy?: boolean;
  /** Per-migration cap, MiB/s. */
  bandwidthMibps?: number;
  onProgress: (p: Progress) => void;
}

export interface ColdRequest {
  vm: Vm;
  destination: string;
  shutdownTimeoutS: number;
  /** Power the guest off if it ignores the shutdown request. */
  forceOff: boolean;
  /**
   * How long the whole move may take, ms from the call (shutdown, copy, start): past it the
   * driver undoes what the destination got, starts the guest again where it was, and answers
   * 'timeout'.
   */
  deadlineMs: number;
  bandwidthMibps?: number;
  onProgress: (p: Progress) => void;
}

export interface PreflightItem {
  vm: Vm;
  destination: string;
}

export type CheckName =
  | 'state' | 'reachable' | 'same-host' | 'memory' | 'disk' | 'cpu' | 'hypervisor' | 'storage' | 'peer' | 'name';

export interface CheckResult {
  check: CheckName;
  ok: boolean;
  detail: string;
}

/** Where a VM is now: every host that has a domain of that name, with its state. */
export interface Location {
  vm: string;
  found: { host: string; state: VmState }[];
  /** Hosts that could not be asked. */
  unreachable: string[];
}

/** A migration the previous process started and never saw end. */
export interface RecoverRequest {
  /** The VM as it was when the migration started (host = its source, state before it). */
  vm: Vm;
  destination: string;
  method: Method;
  /** How long to wait for a migration job still running on the source before aborting it. */
  waitMs: number;
}

/** Where the VM runs once the interrupted migration is settled, and what was done to get there. */
export interface Recovery {
  host: string | null;
  action: string;
}

export interface MaintainStep {
  durationMs: number;
  version?: string;
  fail: boolean;
}

export interface Driver {
  readonly name: string;
  readonly clock: Clock;
  /** Most one migration stream carries, MiB/s, where the driver knows it (the simulator's model). */
  readonly streamMibps?: number;
  /** Outgoing migrations a host runs at once whatever is asked (Nova: max_concurrent_live_migrations, 1 by default). */
  readonly perHostMigrations?: number;
  /**
   * What a migration costs besides sending its bytes, seconds (job set-up, switch-over, scheduling):
   * the estimates' fixed part before the run has learned its own (runner/run.ts).
   */
  readonly setupS?: number;
  /** What a cold move costs besides copying its disk, seconds: the guest's shutdown (a running one) and its define and boot on the destination. */
  readonly coldS?: { shutdown: number; boot: number };
  /** Hosts and VMs as they are now. */
  inventory(): Promise<Outcome<{ inventory: Inventory }>>;
  /** Read-only checks of each VM against its planned destination. */
  preflight(items: PreflightItem[]): Promise<CheckResult[][]>;
  /** Live-migrate; resolves when the migration ends, however it ends. */
  liveMigrate(req: LiveRequest): Promise<MigrationOutcome>;
  /** Abort the live migration of vm in flight; its liveMigrate then resolves as aborted. */
  abort(vm: Vm): Promise<Outcome<object>>;
  /**
   * Shut down, copy, define and start on the destination, verify, then remove from the source.
   * The guest is shut down only once the destination has answered (a move that cannot finish
   * never costs an outage); a destination that does not answer is a failure 'unreachable' naming it.
   */
  coldMigrate(req: ColdRequest): Promise<MigrationOutcome>;
  /**
   * Settle a migration interrupted by the death of the process that ran it: wait for a job still
   * running, complete a cold migration whose destination copy runs, else roll back to the source.
   * Never leaves the VM on two hosts or on none.
   */
  recover(req: RecoverRequest): Promise<Recovery>;
  /**
   * Mark a host (or with null, unmark it). Refused, naming the holder, when another plan holds it
   * and force is not set.
   */
  fence(host: string, fence: Fence | null, force?: boolean): Promise<Outcome<object> & { holder?: Fence }>;
  /** Look the VM up on the given hosts. */
  locate(vm: Vm, hosts: string[]): Promise<Location>;
  /**
   * A simulated maintenance (the simulated fleet only; real fleets run the plan's command): the
   * host stops answering for durationMs, then comes back with its hypervisor at version, or,
   * with fail, does not come back.
   */
  maintain?(host: string, step: MaintainStep): Promise<Outcome<object>>;
  /**
   * Shut the guest down cleanly where it is (asked again while it runs; past timeoutS powered off
   * when forceOff, else left running: 'shutdown-refused'), or start it where it is; resolves once
   * it is shut off or running. A roll's pinned VMs (rolling.pinned: shutdown-restart) use it.
   */
  power?(vm: Vm, to: 'off' | 'on', opts: { timeoutS: number; forceOff: boolean }): Promise<Outcome<object>>;
  /** Run a command on the host itself (libvirt, over its SSH): exit code and output; rejects when the host cannot be reached. */
  exec?(host: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Release connections. */
  close(): Promise<void>;
}
