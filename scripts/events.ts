/** The one event stream: the console, the reports (and later the journal) all read it. */
import type { FailReason, Progress } from './fleet/driver.ts';

export type Method = 'live' | 'cold';
export type StageName = 'plan' | 'discover' | 'place' | 'preflight' | 'migrate' | 'verify' | 'report';

export type EvacEvent =
  | { kind: 'stage'; t: number; stage: StageName; detail?: string }
  | { kind: 'move-start'; t: number; vm: string; source: string; destination: string; method: Method; attempt: number }
  | { kind: 'progress'; t: number; progress: Progress }
  | {
    kind: 'move-end'; t: number; vm: string; source: string; destination: string; method: Method; attempt: number;
    outcome: 'ok' | FailReason; detail: string; bytes: number; downtimeMs: number;
  }
  | { kind: 'fallback'; t: number; vm: string; to: 'cold' | 'another destination'; why: string }
  | { kind: 'vm-left'; t: number; vm: string; source: string; why: string }
  | { kind: 'host-empty'; t: number; host: string; empty: boolean; left: string[] }
  | { kind: 'warning'; t: number; message: string };

export type EventSink = (e: EvacEvent) => void;
