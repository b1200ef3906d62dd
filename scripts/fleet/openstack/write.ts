/**
 * Writes to Nova that must not happen twice (POST actions, PUT os-services, DELETE a migration,
 * the lease's aggregate calls). The client never re-sends them on its own (only when the
 * connection was refused, so Nova never saw them). When such a request's answer is lost (a 5xx,
 * a reset, a timeout), Nova's own state tells whether it was taken: it is looked at until it
 * shows it or the window passes; taken counts as answered; not taken is sent once more (the state
 * said it was not done), and a second loss stands as the failure.
 */
import { messageOf } from '../../errors.ts';
import type { Clock } from '../driver.ts';
import { isTransient } from './client.ts';

export interface WriteTiming {
  /** Pause between two looks at Nova's state, ms. */
  pollMs: number;
  /** How long Nova's state is looked at for the effect of a write whose answer was lost, ms. */
  takenWindowMs: number;
}

export type Written<T> =
  | { ok: true; answer?: T; taken?: true }
  /** unknown: Nova's state could not be read, so whether it was taken is not known. */
  | { ok: false; error: unknown; detail: string; unknown?: true };

/**
 * Send once; on a lost answer decide from taken() (Nova's state) whether it was done, and send
 * once more only when the state says it was not. A refusal (4xx) is returned as it is.
 */
export async function writeOnce<T>(clock: Clock, timing: WriteTiming, what: string, send: () => Promise<T>, taken: () => Promise<boolean>): Promise<Written<T>> {
  for (let sent = 1; ; sent++) {
    let error: unknown;
    try {
      return { ok: true, answer: await send() };
    } catch (e) {
      error = e;
    }
    if (!isTransient(error)) return { ok: false, error, detail: `${what}: ${messageOf(error)}` };
    const seen = await lookFor(clock, timing, taken);
    if (seen === true) return { ok: true, taken: true };
    if (seen === undefined) {
      return { ok: false, error, unknown: true, detail: `${what} got no answer (${messageOf(error)}) and Nova's state could not be read to tell whether it was taken: look before acting on it` };
    }
    if (sent >= 2) return { ok: false, error, detail: `${what} got no answer twice (${messageOf(error)}); Nova shows it was not taken` };
  }
}

/** true once taken() says so; false when the window passed without; undefined when no look succeeded. */
async function lookFor(clock: Clock, timing: WriteTiming, taken: () => Promise<boolean>): Promise<boolean | undefined> {
  const until = clock.now() + timing.takenWindowMs;
  let read = false;
  for (;;) {
    try {
      if (await taken()) return true;
      read = true;
    } catch { /* Nova unreadable for now: look again */ }
    if (clock.now() >= until) return read ? false : undefined;
    await clock.sleep(timing.pollMs);
  }
}
