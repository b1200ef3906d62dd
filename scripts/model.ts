/**
 * The evacuation's vocabulary: leaf types every stage shares (a migration's method and outcome,
 * its progress, one attempt, a VM's result, a planned move, a host's proof). This file imports
 * nothing but the fleet's own types, so the stages import it and never each other in a circle.
 */

export type Method = 'live' | 'cold';

/** Why something failed, as classified from the fleet's state rather than from message text. */
export type FailReason =
  | 'unreachable' // a host did not answer (down, partitioned, crashed)
  | 'timeout' // the deadline passed and the job was aborted
  | 'aborted' // the job was aborted on request
  | 'error' // the hypervisor reported an error; the guest stayed on its source
  | 'refused' // a precondition failed (no room, incompatible, same host)
  | 'not-found' // the VM is not where it was expected
  | 'shutdown-refused'; // the guest ignored shutdown and forcing it off is not allowed

export type Phase = 'setup' | 'disk' | 'memory' | 'switchover' | 'shutdown' | 'copy' | 'boot' | 'cleanup';

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

/** One migration attempt of a VM. */
export interface Attempt {
  method: Method;
  destination: string;
  /** ms on the driver's clock */
  start: number;
  end: number;
  outcome: 'ok' | FailReason;
  detail: string;
  /** The host that failed, when one did. */
  failedHost?: string;
  bytes: number;
  downtimeMs: number;
  rounds?: number;
  /** Where the VM was found afterwards. */
  foundOn: string | null;
  /** The driver's call threw or hung: no fallback follows (fleet/guard.ts). */
  unsettled?: true;
}

export type VmStatus = 'moved' | 'left' | 'pinned' | 'unplaced';

/** A VM's final result in a run. */
export interface VmResult {
  vm: string;
  source: string;
  plannedDestination: string | null;
  /** Where it runs at the end. */
  host: string | null;
  status: VmStatus;
  method: 'live' | 'cold' | 'none';
  reason: string;
  attempts: Attempt[];
}

/** One planned migration. */
export interface Move {
  vm: string;
  source: string;
  destination: string;
  method: Method;
  /** Estimated live-migration seconds at the full stream rate; null when it would not converge. */
  estimateS: number | null;
  /**
   * live: the least memory (MiB) its pre-copy can send, at the best rate it can ever get (alone on
   * its links): the rounds re-send what the guest dirties. Its memory once where post-copy or
   * auto-converge may cut the rounds short, or where it would not converge. For the report's bound.
   */
  leastMib?: number;
  /** The fastest one stream of it can go, MiB/s: the stream ceiling, the bandwidth cap, the NICs at both ends. For the report's bound. */
  bestMibps?: number;
}

/** What the final check found on a source host. */
export interface HostProof {
  host: string;
  /** No domain left in any state (with a vms list: none of the VMs the plan moves). */
  empty: boolean;
  /** Domains still there, in any state, with why. */
  left: { vm: string; state: string; why: string }[];
  /** The plan moves only some VMs (vms): empty means none of those is left; other VMs may run there. */
  scoped?: true;
}
