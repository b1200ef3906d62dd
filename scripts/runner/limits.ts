/**
 * The run's named concurrency limits (p-limit): total, per source (outbound), per destination
 * (inbound). The dispatcher only starts a migration when all three have room, then takes one slot
 * of each at once, so no migration ever waits inside one limit while holding another.
 */
import pLimit, { type LimitFunction } from 'p-limit';

export interface LimitSettings {
  total: number;
  perSource: number;
  perDestination: number;
}

export class Limits {
  private readonly total: LimitFunction;
  private readonly outbound = new Map<string, LimitFunction>();
  private readonly inbound = new Map<string, LimitFunction>();

  constructor(private readonly settings: LimitSettings) {
    this.total = pLimit(settings.total);
  }

  /** Whether a migration from source to destination may start now. */
  hasRoom(source: string, destination: string): boolean {
    return this.gates(source, destination).every((l) => l.activeCount + l.pendingCount < l.concurrency);
  }

  /** No migration at all may start now (the total is taken): a dispatcher need look no further. */
  get full(): boolean {
    return this.total.activeCount + this.total.pendingCount >= this.total.concurrency;
  }

  /** Migrations in flight now. */
  get active(): number {
    return this.total.activeCount;
  }

  /** Run task holding a slot of each limit. Call only when hasRoom(source, destination). */
  async run<T>(source: string, destination: string, task: () => Promise<T>): Promise<T> {
    if (!this.hasRoom(source, destination)) throw new Error(`internal: no room for ${source} -> ${destination}`);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slots: Promise<void>[] = [];
    // Each limit counts the slot synchronously here; the grants arrive a microtask later.
    const grants = this.gates(source, destination).map((limit) => new Promise<void>((granted) => {
      slots.push(limit(() => {
        granted();
        return held;
      }));
    }));
    try {
      await Promise.all(grants);
      return await task();
    } finally {
      release();
      // p-limit frees a slot just before its promise settles: once these settle, hasRoom is current.
      await Promise.all(slots);
    }
  }

  private gates(source: string, destination: string): LimitFunction[] {
    return [this.total, of(this.outbound, source, this.settings.perSource), of(this.inbound, destination, this.settings.perDestination)];
  }
}

function of(map: Map<string, LimitFunction>, host: string, n: number): LimitFunction {
  let limit = map.get(host);
  if (!limit) {
    limit = pLimit(n);
    map.set(host, limit);
  }
  return limit;
}
