/**
 * The pre-copy model from field-notes.md, closed form. M = bytes of the first round, R = rate,
 * D = dirty rate, lambda = D/R, d = downtime limit. Round i sends M*lambda^i; switch-over when the
 * remainder <= R*d. Used for estimates (ordering, windows, the report's bound); the simulator
 * plays the same rounds event by event, with rates that change as links are shared.
 */
export interface PrecopyInput {
  /** Bytes in the first round (non-zero memory). */
  memoryBytes: number;
  /** Transfer rate, bytes/s. */
  rateBps: number;
  /** Dirty rate, bytes/s. */
  dirtyBps: number;
  /** Downtime limit, ms. */
  downtimeMs: number;
  /** Fixed set-up time, ms. */
  setupMs?: number;
  /** Fixed resume time on the destination, ms. */
  resumeMs?: number;
}

export type PrecopyEstimate =
  | { converges: true; rounds: number; sentBytes: number; durationMs: number; downtimeMs: number }
  | { converges: false; lambda: number };

export function estimatePrecopy(p: PrecopyInput): PrecopyEstimate {
  const { memoryBytes: M, rateBps: R, dirtyBps: D, downtimeMs } = p;
  const setup = p.setupMs ?? 0;
  const resume = p.resumeMs ?? 0;
  const threshold = (R * downtimeMs) / 1000;
  if (M <= threshold) {
    // Everything fits in the stop-and-copy itself.
    return { converges: true, rounds: 0, sentBytes: M, durationMs: setup + (M / R) * 1000 + resume, downtimeMs: (M / R) * 1000 + resume };
  }
  const lambda = D / R;
  if (lambda >= 1) return { converges: false, lambda };
  if (lambda === 0) {
    return { converges: true, rounds: 1, sentBytes: M, durationMs: setup + (M / R) * 1000 + resume, downtimeMs: resume };
  }
  const n = Math.ceil(Math.log(threshold / M) / Math.log(lambda));
  const sent = (M * (1 - lambda ** (n + 1))) / (1 - lambda);
  const last = M * lambda ** n;
  return {
    converges: true,
    rounds: n,
    sentBytes: sent,
    durationMs: setup + (sent / R) * 1000 + resume,
    downtimeMs: (last / R) * 1000 + resume,
  };
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
