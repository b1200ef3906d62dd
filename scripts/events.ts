/** The one event stream: the console, the journal and the reports all read it. */
import type { FailReason, Method, Progress, VmResult } from './model.ts';

export type { Method };
export type StageName = 'plan' | 'recover' | 'discover' | 'place' | 'preflight' | 'migrate' | 'verify' | 'report';

export type EvacEvent =
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
  | { kind: 'host-empty'; t: number; host: string; empty: boolean; left: string[] }
  | { kind: 'warning'; t: number; message: string };

export type EventSink = (e: EvacEvent) => void;
