/**
 * Processes and the files that say who holds what: this controller's name, a process's start
 * time (so a reused pid is not taken for a live holder), whether a holder still runs, and lock
 * files made with their content in one step. Imports nothing of the pipeline's stages.
 */
import { linkSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { EvacError, userError } from './errors.ts';

/**
 * Until a command takes over SIGINT and SIGTERM (run does, to finish what is in flight), a signal
 * ends the process at once with the documented code 130: nothing was changed yet, and plan,
 * validate, report and clear are read-only or short.
 */
export function endOnSignal(): void {
  process.on('SIGINT', earlyEnd).on('SIGTERM', earlyEnd);
}

/** The command handles signals itself from now on. */
export function takeSignals(): void {
  process.off('SIGINT', earlyEnd).off('SIGTERM', earlyEnd);
}

/**
 * A command's two-stage interrupt: the first SIGINT/SIGTERM aborts stop (start nothing new), the
 * second halt (cancel what is in flight); each said through say with the command's own words. The
 * command takes the signals from the early handler until release().
 */
export function interrupts(say: (message: string) => void, words: { first: string; second: string; later?: string }): { stop: AbortSignal; halt: AbortSignal; release(): void } {
  const stop = new AbortController();
  const halt = new AbortController();
  // Every migration in flight listens to both (a region run has dozens at once): not a leak.
  setMaxListeners(0, stop.signal, halt.signal);
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals === 1) {
      say(`${sig}: ${words.first}`);
      stop.abort();
    } else if (signals === 2 || !words.later) {
      say(`${sig} again: ${words.second}`);
      halt.abort();
    } else say(`${sig}: ${words.later}`);
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  takeSignals();
  return { stop: stop.signal, halt: halt.signal, release: () => void process.off('SIGINT', onSignal).off('SIGTERM', onSignal) };
}

function earlyEnd(): void {
  process.exit(130);
}

export function controller(): string {
  return hostname();
}

/** The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), where there is a /proc. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists on this machine (it may be another's: see stillRunning). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function stillRunning(run: { controller: string; pid: number; pidStart?: string; ended: boolean }): boolean {
  if (run.ended || run.controller !== controller() || run.pid === process.pid) return false;
  if (!pidAlive(run.pid)) return false;
  // The pid is taken; by the same process only if it started when the run's did.
  const started = run.pidStart === undefined ? undefined : processStart(run.pid);
  return started === undefined || started === run.pidStart;
}

/** Who holds a lock file. */
export interface Holder {
  pid: number;
  pidStart?: string;
  controller: string;
  at: string;
}

/**
 * Take the lock file at path: made with its content in one step (a link, which fails if the name
 * exists), naming this process. A lock whose process is gone (killed) is taken over; one whose
 * process runs (same pid and start time) is refused with held(holder). A lock of this very
 * process is taken over (callers that must not share within a process keep their own set).
 * Returns the release.
 */
export function lockFile(path: string, held: (holder: Holder) => Error, racing: string): () => void {
  const content = JSON.stringify({ pid: process.pid, pidStart: processStart(process.pid) ?? null, controller: controller(), at: new Date().toISOString() });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  try {
    writeFileSync(tmp, content);
  } catch (e) {
    throw userError(`cannot lock ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, [], 'give a folder this user can write');
  }
  try {
    for (let tries = 0; tries < 3; tries++) {
      try {
        linkSync(tmp, path);
        return () => {
          try {
            if (readFileSync(path, 'utf8') === content) unlinkSync(path);
          } catch {
            // Already gone: nothing to release.
          }
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw userError(`cannot lock ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, [], 'give a folder this user can write');
      }
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        continue;
      }
      const other = parseHolder(text);
      if (other && stillRunning({ ...other, ended: false })) throw held(other);
      // Its process is gone (killed, or on another controller that left it): taken over, if still the same lock.
      try {
        if (readFileSync(path, 'utf8') === text) unlinkSync(path);
      } catch {
        // Taken or released meanwhile: try again.
      }
    }
    throw new EvacError(racing, 'held', [], 'run one at a time');
  } finally {
    rmSync(tmp, { force: true });
  }
}

function parseHolder(text: string): Holder | undefined {
  try {
    const l = JSON.parse(text) as { pid?: unknown; pidStart?: unknown; controller?: unknown; at?: unknown };
    if (typeof l.pid !== 'number' || typeof l.controller !== 'string') return undefined;
    return { pid: l.pid, controller: l.controller, at: String(l.at), ...(typeof l.pidStart === 'string' ? { pidStart: l.pidStart } : {}) };
  } catch {
    return undefined;
  }
}
