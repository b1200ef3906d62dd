/**
 * Discrete-event engine in virtual time: timers and network flows sharing host NICs max-min fairly.
 * Time advances only when the rest of the program is idle (a setImmediate turn), so callers see
 * a consistent clock and a 500-VM evacuation simulates in well under a second.
 */
import type { Clock } from '../driver.ts';

interface Timer {
  at: number;
  fire: () => void;
  cancelled: boolean;
  /** Fires when time gets there, but is no reason for time to go on (a fault scheduled in the fleet). */
  passive?: boolean;
}

export interface Flow {
  from: string;
  to: string;
  /** Bytes left. */
  remaining: number;
  /** Per-flow cap, bytes/s. */
  cap: number;
  /** Current rate, bytes/s (set by the engine). */
  rate: number;
  done: (result: 'done' | 'cancelled') => void;
}

const EPS_BYTES = 1e-3;

export class Engine implements Clock {
  private t = 0;
  private timers: Timer[] = [];
  private flows = new Set<Flow>();
  private ratesStale = false;
  private queued = false;

  constructor(private readonly nicBps: (host: string) => number) {}

  now(): number {
    return this.t;
  }

  /** Continue from a saved time (a resumed run goes on where the killed one stopped). */
  resumeAt(t: number): void {
    this.t = Math.max(this.t, t);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      // The listener goes when the sleep ends either way: a long-lived signal collects none.
      const onAbort = () => {
        timer.cancelled = true;
        resolve();
      };
      const timer = this.at(this.t + Math.max(0, ms), () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Call fire at virtual time `at` (ms). A passive timer (a fault the fleet has scheduled) fires
   * when time reaches it but does not by itself move time on: time moves only while someone waits
   * (a sleep, a transfer), as a real clock would for the run that watches it.
   */
  at(at: number, fire: () => void, passive = false): Timer {
    const timer = { at, fire, cancelled: false, passive };
    this.timers.push(timer);
    this.kick();
    return timer;
  }

  /** Send bytes from one host to another; resolves 'done' or 'cancelled'. */
  transfer(from: string, to: string, bytes: number, capBps: number): { flow: Flow; finished: Promise<'done' | 'cancelled'> } {
    let done!: Flow['done'];
    const finished = new Promise<'done' | 'cancelled'>((resolve) => (done = resolve));
    const flow: Flow = { from, to, remaining: bytes, cap: capBps, rate: 0, done };
    if (bytes <= EPS_BYTES) {
      done('done');
      return { flow, finished };
    }
    this.flows.add(flow);
    this.ratesStale = true;
    this.kick();
    return { flow, finished };
  }

  cancel(flow: Flow): void {
    if (this.flows.delete(flow)) {
      this.ratesStale = true;
      flow.done('cancelled');
      this.kick();
    }
  }

  /** Flows touching a host (to cancel them when it crashes). */
  flowsOf(host: string): Flow[] {
    return [...this.flows].filter((f) => f.from === host || f.to === host);
  }

  private kick(): void {
    if (this.queued) return;
    this.queued = true;
    // Steps chained on immediates alone were measured to keep a signal (SIGINT, SIGTERM) from
    // being handled until the simulation went idle: every 20 ms of wall time the next step waits
    // on a timer instead, and the event loop polls with a real timeout in between.
    const now = performance.now();
    if (now - this.rested < 20) setImmediate(() => this.step());
    else {
      this.rested = now;
      setTimeout(() => this.step(), 0);
    }
  }

  /** When a step last waited on a timer (wall ms). */
  private rested = performance.now();

  private step(): void {
    this.queued = false;
    if (this.ratesStale) this.shareBandwidth();
    this.timers = this.timers.filter((x) => !x.cancelled);
    let next = Infinity;
    for (const x of this.timers) if (!x.passive) next = Math.min(next, x.at);
    // A passive timer due before the next event fires on the way.
    if (next !== Infinity || this.flows.size > 0) for (const x of this.timers) if (x.passive) next = Math.min(next, x.at);
    for (const f of this.flows) if (f.rate > 0) next = Math.min(next, this.t + (f.remaining / f.rate) * 1000);
    if (next === Infinity) return; // idle until someone starts something
    const dt = (next - this.t) / 1000;
    this.t = next;
    for (const f of [...this.flows]) {
      f.remaining -= f.rate * dt;
      if (f.remaining <= Math.max(EPS_BYTES, f.rate * 1e-9)) {
        this.flows.delete(f);
        this.ratesStale = true;
        f.done('done');
      }
    }
    const due = this.timers.filter((x) => x.at <= this.t);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) x.fire();
    this.kick();
  }

  /** Max-min fair shares: each flow uses its source's out-NIC and its destination's in-NIC. */
  private shareBandwidth(): void {
    this.ratesStale = false;
    const left = new Map<string, number>();
    const links = (f: Flow) => [`out:${f.from}`, `in:${f.to}`];
    for (const f of this.flows) {
      f.rate = 0;
      for (const l of links(f)) if (!left.has(l)) left.set(l, this.nicBps(l.slice(l.indexOf(':') + 1)));
    }
    let active = [...this.flows];
    while (active.length > 0) {
      const users = new Map<string, number>();
      for (const f of active) for (const l of links(f)) users.set(l, (users.get(l) ?? 0) + 1);
      let inc = Infinity;
      for (const [l, n] of users) inc = Math.min(inc, left.get(l)! / n);
      for (const f of active) inc = Math.min(inc, f.cap - f.rate);
      for (const f of active) {
        f.rate += inc;
        for (const l of links(f)) left.set(l, left.get(l)! - inc);
      }
      const saturated = (l: string) => left.get(l)! <= 1e-6;
      active = active.filter((f) => f.cap - f.rate > 1e-6 && !links(f).some(saturated));
    }
  }
}
