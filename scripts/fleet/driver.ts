/**
 * The one interface every fleet driver (sim, libvirt, openstack) implements. Methods return typed
 * outcomes; they throw only on bugs. Per-VM failures are data that the runner and the report use.
 */
import type { Inventory, Vm, VmState } from './types.ts';

/** Time as the driver sees it: wall time for real fleets, virtual time for the simulator. */
export interface Clock {
  /** Milliseconds since the run began. */
  now(): number;
  /** Resolves after ms, or early (without rejecting) when the signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Why something failed, as classified from the fleet's state rather than from message text. */
export type FailReason =
  | 'unreachable' // a host did not answer (down, partitioned, crashed)
  | 'timeout' // the deadline passed and the job was aborted
  | 'aborted' // the job was aborted on request
  | 'error' // the hypervisor reported an error; the guest stayed on its source
  | 'refused' // a precondition failed (no room, incompatible, same host)
  | 'not-found' // the VM is not where it was expected
  | 'shutdown-refused'; // the guest ignored shutdown and forcing it off is not allowed

export interface Failure {
  ok: false;
  reason: FailReason;
  detail: string;
  /** The host that failed, when one did. */
  host?: string;
}

export type Outcome<T> = ({ ok: true } & T) | Failure;

export type Phase = 'setup' | 'disk' | 'memory' | 'switchover' | 'shutdown' | 'copy' | 'boot';

/** Progress of one migration, as the migration job reports it. */
export interface Progress {
  vm: string;
  phase: Phase;
  /** Pre-copy round, from 0. */
  round?: number;
  /** Bytes sent so far in this migration. */
  sentBytes: number;
  /** Bytes still to send in the current phase. */
  remainingBytes: number;
  /** Current transfer rate, bytes/s. */
  rateBps: number;
}

export interface MigrationStats {
  /** Bytes sent over the network. */
  bytes: number;
  /** Time the guest was not running, ms. */
  downtimeMs: number;
  /** Pre-copy rounds (live only). */
  rounds?: number;
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
  bandwidthMibps?: number;
  onProgress: (p: Progress) => void;
}

export interface PreflightItem {
  vm: Vm;
  destination: string;
}

export type CheckName =
  | 'state' | 'reachable' | 'same-host' | 'memory' | 'disk' | 'cpu' | 'hypervisor' | 'storage' | 'peer';

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

export interface Driver {
  readonly name: string;
  readonly clock: Clock;
  /** Hosts and VMs as they are now. */
  inventory(): Promise<Outcome<{ inventory: Inventory }>>;
  /** Read-only checks of each VM against its planned destination. */
  preflight(items: PreflightItem[]): Promise<CheckResult[][]>;
  /** Live-migrate; resolves when the migration ends, however it ends. */
  liveMigrate(req: LiveRequest): Promise<MigrationOutcome>;
  /** Abort the live migration of vm in flight; its liveMigrate then resolves as aborted. */
  abort(vm: Vm): Promise<Outcome<object>>;
  /** Shut down, copy, define and start on the destination, verify, then remove from the source. */
  coldMigrate(req: ColdRequest): Promise<MigrationOutcome>;
  /** Look the VM up on the given hosts. */
  locate(vm: Vm, hosts: string[]): Promise<Location>;
  /** Release connections. */
  close(): Promise<void>;
}
