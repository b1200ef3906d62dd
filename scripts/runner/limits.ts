/**
 * The run's named concurrency limits (p-limit): total, per source (outbound), per destination
 * (inbound). The dispatcher only starts a migration when all three have room, then takes one slot
 * of each at once, so no migration ever waits inside one limit while holding another.
 *
 * concurrency: auto (resolveLimits) derives them from the link model: per host as many streams as
 * fill its NIC (NIC / the per-stream ceiling; a driver may cap it, as Nova does at one outgoing
 * migration per compute), fleet-wide the sum over the sources. With auto, a migration also waits
 * while starting it would cut a link's share below the dirty rate of a guest migrating on it
 * (pre-copy would not converge); one alone on its links always starts.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { nicMibpsOf, type Host } from '../fleet/types.ts';
import { schemaDefault } from '../plan/defaults.ts';
import type { Limit } from '../plan/plan-types.ts';

export interface LimitSettings {
  total: number;
  perSource: number | ((host: string) => number);
  perDestination: number | ((host: string) => number);
  /** auto: the link model the convergence check uses (NIC per host, per-stream ceiling), MiB/s. */
  links?: { nicMibps: (host: string) => number; streamMibps: number };
}

/** A per-host limit (a number, or auto's per-host value) for this host. */
export function limitOn(v: LimitSettings['perSource'], host: string): number {
  return typeof v === 'number' ? v : v(host);
}

/** QEMU's single-stream ceiling when the driver does not say (the plan schema's fleet.sim.stream_mibps). */
const STREAM_MIBPS = schemaDefault<number>('/definitions/SimFleet/properties/stream_mibps');
/** A guest converges while the link gives it this much more than it dirties. */
export const CONVERGE_MARGIN = 1.25;

/** The plan's limits (numbers or auto) as numbers per host, from the hosts' NICs and the driver's own stream ceiling and per-host cap. */
export function resolveLimits(c: { total: Limit; perSource: Limit; perDestination: Limit }, hosts: { sources: Host[]; destinations: Host[] }, driver: { streamMibps?: number; perHostMigrations?: number }): LimitSettings & { describe: string } {
  const nic = new Map([...hosts.sources, ...hosts.destinations].map((h) => [h.name, nicMibpsOf(h)]));
  const nicOf = (h: string) => nic.get(h) ?? nicMibpsOf(undefined);
  const stream = driver.streamMibps ?? STREAM_MIBPS;
  const streams = (h: string) => Math.min(driver.perHostMigrations ?? Infinity, Math.max(1, Math.ceil(nicOf(h) / stream - 1e-9)));
  const perSource = c.perSource === 'auto' ? streams : c.perSource;
  const perDestination = c.perDestination === 'auto' ? streams : c.perDestination;
  const total = c.total === 'auto'
    ? Math.max(1, hosts.sources.reduce((a, h) => a + limitOn(perSource, h.name), 0))
    : c.total;
  const auto = c.total === 'auto' || c.perSource === 'auto' || c.perDestination === 'auto';
  const say = (k: Limit, v: number | ((h: string) => number), what: string) => (k === 'auto' ? `${what} auto (${typeof v === 'number' ? v : describeSpread(hosts, v, what)})` : `${what} ${v}`);
  return {
    total, perSource, perDestination,
    ...(auto ? { links: { nicMibps: nicOf, streamMibps: stream } } : {}),
    describe: `at most ${total} at once${c.total === 'auto' ? ' (auto)' : ''}, ${say(c.perSource, perSource, 'per source')}, ${say(c.perDestination, perDestination, 'per destination')}`,
  };
}

function describeSpread(hosts: { sources: Host[]; destinations: Host[] }, f: (h: string) => number, what: string): string {
  const list = what === 'per source' ? hosts.sources : hosts.destinations;
  const vals = [...new Set(list.map((h) => f(h.name)))].sort((a, b) => a - b);
  return vals.length === 0 ? 'none' : vals.length === 1 ? String(vals[0]) : `${vals[0]}-${vals.at(-1)}`;
}

export class Limits {
  private readonly total: LimitFunction;
  private readonly outbound = new Map<string, LimitFunction>();
  private readonly inbound = new Map<string, LimitFunction>();

  /** auto: the dirty rates of the migrations in flight, per source and per destination. */
  private readonly dirtyOut = new Map<string, number[]>();
  private readonly dirtyIn = new Map<string, number[]>();

  constructor(private readonly settings: LimitSettings) {
    this.total = pLimit(settings.total);
  }

  /** Whether a migration from source to destination (of a guest dirtying dirtyMibps) may start now. */
  hasRoom(source: string, destination: string, dirtyMibps = 0): boolean {
    return this.gates(source, destination).every((l) => l.activeCount + l.pendingCount < l.concurrency) && this.converges(source, destination, dirtyMibps);
  }

  /** auto: each guest on the two links (this one included) still gets more than it dirties once this one shares them. */
  private converges(source: string, destination: string, dirty: number): boolean {
    const links = this.settings.links;
    if (!links) return true;
    const out = this.dirtyOut.get(source) ?? [];
    const inn = this.dirtyIn.get(destination) ?? [];
    if (out.length === 0 && inn.length === 0) return true;
    const share = Math.min(links.streamMibps, links.nicMibps(source) / (out.length + 1), links.nicMibps(destination) / (inn.length + 1));
    return Math.max(dirty, ...out, ...inn) * CONVERGE_MARGIN < share;
  }

  /** No migration at all may start now (the total is taken): a dispatcher need look no further. */
  get full(): boolean {
    return this.total.activeCount + this.total.pendingCount >= this.total.concurrency;
  }

  /** Migrations in flight now. */
  get active(): number {
    return this.total.activeCount;
  }

  /** Run task holding a slot of each limit. Call only when hasRoom(source, destination, dirtyMibps). */
  async run<T>(source: string, destination: string, task: () => Promise<T>, dirtyMibps = 0): Promise<T> {
    if (!this.hasRoom(source, destination, dirtyMibps)) throw new Error(`internal: no room for ${source} -> ${destination}`);
    const mark = (m: Map<string, number[]>, h: string) => {
      const list = m.get(h) ?? [];
      list.push(dirtyMibps);
      m.set(h, list);
      return () => list.splice(list.indexOf(dirtyMibps), 1);
    };
    const unmark = [mark(this.dirtyOut, source), mark(this.dirtyIn, destination)];
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
      for (const u of unmark) u();
      release();
      // p-limit frees a slot just before its promise settles: once these settle, hasRoom is current.
      await Promise.all(slots);
    }
  }

  private gates(source: string, destination: string): LimitFunction[] {
    return [this.total, of(this.outbound, source, limitOn(this.settings.perSource, source)), of(this.inbound, destination, limitOn(this.settings.perDestination, destination))];
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
