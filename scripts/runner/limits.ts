/**
 * The run's named concurrency limits (p-limit): total, per source (outbound), per destination
 * (inbound). The dispatcher only starts a migration when all three have room, then takes one slot
 * of each at once, so no migration ever waits inside one limit while holding another.
 *
 * concurrency: auto (resolveLimits) derives them from the link model: per host as many streams as
 * fill its NIC (NIC / the per-stream ceiling; a driver may cap it, as Nova does at one outgoing
 * migration per compute), fleet-wide the sum over the sources. With auto:
 * - A migration shares a link only where that moves memory faster: each guest on it counts the
 *   rate it gets above what it dirties, as a share of what it gets alone (a pre-copy's progress;
 *   see linkValue), summed over the time they would share the link. Two quiet guests fill a
 *   10 GbE link that one stream does not; a guest dirtying 450 MiB/s beside any other re-sends
 *   more than the second one moves, so its memory crosses alone. A guest copying its local disk
 *   dirties nothing the link carries, so it shares the link until its memory starts.
 * - Never two guests side by side where either would get less than CONVERGE_MARGIN times what it
 *   dirties, counting on the estimates less (one in flight may take half as long again as
 *   expected): they would crawl, or neither end. A guest that cannot converge even alone is not
 *   held to it and holds no stream (it runs until its deadline whatever shares its link).
 * - A migration expected to end within the driver's set-up time (from its estimate, as the run
 *   has learned it) no longer counts against the streams of its links: the next one's set-up
 *   overlaps its end instead of leaving the link idle. One overdue counts again. At most twice the
 *   streams are in flight, and a driver's own per-host cap holds.
 * - A link at its streams takes one more move where waiting would leave that move to run on alone
 *   after everything else (list scheduling's tail) and quiet guests share the link at no cost.
 * - A link's streams are counted in bandwidth: those on it fill it where what each gets alone
 *   (its stream ceiling, or the NIC at its other end) adds up to the NIC, and they share it max-min
 *   fairly (shares): a 1 GbE source's move takes a tenth of a 10 GbE receiver, not one of its two
 *   streams. With one NIC everywhere this is the count of streams.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { nicMibpsOf, type Host } from '../fleet/types.ts';
import { schemaDefault } from '../plan/defaults.ts';
import type { Limit } from '../plan/plan-types.ts';

export interface LimitSettings {
  total: number;
  perSource: number | ((host: string) => number);
  perDestination: number | ((host: string) => number);
  /**
   * auto: the link model the sharing check uses (NIC per host, per-stream ceiling), MiB/s, and
   * which of the three limits are auto (those count only migrations not about to end, and hold at
   * most OVERLAP times their number in flight; a number the plan gives is a hard cap).
   */
  links?: { nicMibps: (host: string) => number; streamMibps: number; auto?: { total: boolean; perSource: boolean; perDestination: boolean }; hostCap?: number };
}

/** A per-host limit (a number, or auto's per-host value) for this host. */
export function limitOn(v: LimitSettings['perSource'], host: string): number {
  return typeof v === 'number' ? v : v(host);
}

/** QEMU's single-stream ceiling when the driver does not say (the plan schema's fleet.sim.stream_mibps). */
const STREAM_MIBPS = schemaDefault<number>('/definitions/SimFleet/properties/stream_mibps');
/** A guest sharing a link converges where its share is this much more than what it dirties. */
const CONVERGE_MARGIN = 1.1;
/** Sharing a link must add this much progress (in whole streams' worth) to be worth it. */
const SHARE_GAIN = 0.02;
/** How much longer than its estimate a migration may take, as a share of it, where convergence is judged. */
const SLOW = 0.5;
/** What a tail move may cost the others on its link (in whole streams' worth; see Limits.tail). */
const TAIL_COST = 0.05;
/**
 * auto: in flight at most this many times the streams (the rest are ending or in set-up). Four
 * made 50 tiny guests on the libvirt testbed take 52 s instead of 42 (its CPUs, not its links,
 * carry the set-ups), though the simulator's tiny guests gained from it.
 */
const OVERLAP = 2;

/** The plan's limits (numbers or auto) as numbers per host, from the hosts' NICs, the driver's own stream ceiling and per-host cap, and the plan's bandwidth cap per migration. */
export function resolveLimits(c: { total: Limit; perSource: Limit; perDestination: Limit }, hosts: { sources: Host[]; destinations: Host[] }, driver: { streamMibps?: number; perHostMigrations?: number }, bandwidthMibps?: number): LimitSettings & { describe: string } {
  const nic = new Map([...hosts.sources, ...hosts.destinations].map((h) => [h.name, nicMibpsOf(h)]));
  const nicOf = (h: string) => nic.get(h) ?? nicMibpsOf(undefined);
  // One stream carries at most the stream ceiling, and the plan's bandwidth cap per migration.
  const stream = Math.min(driver.streamMibps ?? STREAM_MIBPS, bandwidthMibps ?? Infinity);
  const streams = (h: string) => Math.min(driver.perHostMigrations ?? Infinity, Math.max(1, Math.ceil(nicOf(h) / stream - 1e-9)));
  const perSource = c.perSource === 'auto' ? streams : c.perSource;
  const perDestination = c.perDestination === 'auto' ? streams : c.perDestination;
  const total = c.total === 'auto'
    ? Math.max(1, hosts.sources.reduce((a, h) => a + limitOn(perSource, h.name), 0))
    : c.total;
  const auto = { total: c.total === 'auto', perSource: c.perSource === 'auto', perDestination: c.perDestination === 'auto' };
  const say = (k: Limit, v: number | ((h: string) => number), what: string) => (k === 'auto' ? `${what} auto (${typeof v === 'number' ? v : describeSpread(hosts, v, what)})` : `${what} ${v}`);
  return {
    total, perSource, perDestination,
    ...(auto.total || auto.perSource || auto.perDestination ? { links: { nicMibps: nicOf, streamMibps: stream, auto, ...(driver.perHostMigrations !== undefined ? { hostCap: driver.perHostMigrations } : {}) } } : {}),
    describe: `at most ${total} at once${c.total === 'auto' ? ' (auto)' : ''}, ${say(c.perSource, perSource, 'per source')}, ${say(c.perDestination, perDestination, 'per destination')}`,
  };
}

function describeSpread(hosts: { sources: Host[]; destinations: Host[] }, f: (h: string) => number, what: string): string {
  const list = what === 'per source' ? hosts.sources : hosts.destinations;
  const vals = [...new Set(list.map((h) => f(h.name)))].sort((a, b) => a - b);
  return vals.length === 0 ? 'none' : vals.length === 1 ? String(vals[0]) : `${vals[0]}-${vals.at(-1)}`;
}

/** A migration on a link: what its guest dirties and the rate it gets alone, MiB/s. */
export interface OnLink {
  dirty: number;
  alone: number;
}

/**
 * How fast the guests migrating on one link (of nicMibps, shared evenly, each at most streamMibps)
 * move their memory, each as a share of its pace alone: a pre-copy gains on a guest at the rate it
 * gets less the rate the guest dirties. A sum of 1.2 is as much progress as 1.2 guests each alone
 * on a link of its own; a guest that barely gains on what it dirties adds next to nothing.
 * -Infinity where a guest would not converge at all.
 */
export function linkValue(flows: OnLink[], nicMibps: number, streamMibps: number): number {
  const rates = shares(flows, nicMibps, streamMibps);
  let v = 0;
  for (const [i, f] of flows.entries()) {
    // One that cannot converge even alone adds nothing, and loses nothing.
    if (hopeless(f)) continue;
    if (rates[i] <= f.dirty) return -Infinity;
    v += (rates[i] - f.dirty) / Math.max(1e-9, f.alone - f.dirty);
  }
  return v;
}

/**
 * What each migration on a link gets: max-min fair shares of its NIC, none above what it gets
 * alone (the stream ceiling, or the NIC at its other end: a 1 GbE source's move takes a tenth of a
 * 10 GbE receiver, and leaves the rest to the others).
 */
export function shares(flows: OnLink[], nicMibps: number, streamMibps: number): number[] {
  const cap = (f: OnLink) => Math.min(streamMibps, f.alone);
  const order = flows.map((_, i) => i).sort((a, b) => cap(flows[a]) - cap(flows[b]));
  const rates = new Array<number>(flows.length);
  let left = nicMibps;
  for (const [k, i] of order.entries()) {
    rates[i] = Math.min(cap(flows[i]), left / (order.length - k));
    left -= rates[i];
  }
  return rates;
}

/** Whether the migrations on a link fill its NIC (each at what it gets alone). */
export function fills(flows: OnLink[], nicMibps: number, streamMibps: number): boolean {
  return flows.reduce((a, f) => a + Math.min(streamMibps, f.alone), 0) >= nicMibps - 1e-6;
}

/**
 * Whether every guest migrating on a link still gains on what it dirties by CONVERGE_MARGIN: two
 * that do not, sharing a link, crawl (a guest dirtying 590 MiB/s at 595 sends its memory a hundred
 * times over; an operator attack saw a move estimated at 11 s take 71 s) or would neither end
 * until one is cancelled.
 */
export function converges(flows: OnLink[], nicMibps: number, streamMibps: number): boolean {
  const rates = shares(flows, nicMibps, streamMibps);
  // One that gets as much as alone (its stream ceiling, bandwidth cap or other end binds, not this link) loses nothing by sharing.
  return flows.every((f, i) => hopeless(f) || rates[i] >= Math.min(streamMibps, f.alone) - 1e-9 || rates[i] > f.dirty * CONVERGE_MARGIN);
}

/**
 * A guest that dirties memory as fast as it can be sent alone: its live migration runs until its
 * deadline whatever shares its link, so it is not held to converge, and it does not hold a stream
 * (an operator attack saw six such guests keep every quiet move off their receiver for 16 hours).
 */
export function hopeless(f: OnLink): boolean {
  return f.dirty >= f.alone;
}

/** Whether adding one more migration to those on a link moves memory faster (see linkValue). */
export function worthSharing(on: OnLink[], added: OnLink, nicMibps: number, streamMibps: number): boolean {
  if (on.length === 0) return true;
  return linkValue([...on, added], nicMibps, streamMibps) > linkValue(on, nicMibps, streamMibps) + SHARE_GAIN;
}

/** A migration the dispatcher would start: from when it is on the link, on its memory from memoryAt, until when it is expected to end. */
interface Candidate extends OnLink {
  from: number;
  memoryAt: number;
  until: number;
}

/** The moments what a candidate shares a link with changes: it or one on the link starts on its memory, or one ends. */
function cutsOf(on: Flight[], m: Candidate): number[] {
  const open = !Number.isFinite(m.until);
  return [...new Set([m.from, m.memoryAt, ...on.flatMap((f) => [f.memoryFrom, f.endsAt])])]
    .filter((t) => t >= m.from && (open || t < m.until)).sort((a, b) => a - b);
}

/** A migration on a link at time t: copying its local disk, it dirties nothing the link carries. */
function pace(f: Flight, t: number): OnLink {
  return { dirty: t >= f.memoryFrom ? f.dirty : 0, alone: f.alone };
}

interface Flight extends OnLink {
  source: string;
  destination: string;
  startedAt: number;
  /** When it is expected to end, on the driver's clock (Infinity: unknown). */
  endsAt: number;
  /** When it is expected to start on the guest's memory (after its set-up and local disk). */
  memoryFrom: number;
}

/** What the dispatcher knows of a migration it would start. */
export interface Moving {
  /** What the guest dirties, MiB/s (a cold move: 0). */
  dirtyMibps?: number;
  /** How long it is expected to take, ms (its estimate as the run has learned it). */
  expectedMs?: number;
  /** Of that, how long its local disk takes, ms (before its memory). */
  diskMs?: number;
  /** The moves still waiting on its links. */
  waiting?: Waiting;
}

/** The expected time (ms) of the other moves still waiting to start: on a source, into a destination, and in all. */
export interface Waiting {
  out: number;
  in: number;
  total: number;
}
const NONE_WAITING: Waiting = { out: 0, in: 0, total: 0 };

/** The run's clock and the driver's set-up time per migration, for auto's look-ahead. */
export interface Timing {
  now(): number;
  setupMs: number;
}

export class Limits {
  private readonly total: LimitFunction;
  private readonly outbound = new Map<string, LimitFunction>();
  private readonly inbound = new Map<string, LimitFunction>();
  /** The migrations in flight. */
  private readonly flights = new Set<Flight>();

  constructor(private readonly settings: LimitSettings, private readonly timing: Timing = { now: () => 0, setupMs: 0 }) {
    this.total = pLimit(this.hard(settings.total, settings.links?.auto?.total));
  }

  /** The p-limit ceiling of a limit: an auto one holds up to OVERLAP times its streams (ending or in set-up), never above the driver's per-host cap. */
  private hard(n: number, auto: boolean | undefined, perHost = false): number {
    if (!auto) return n;
    const cap = perHost ? this.settings.links?.hostCap ?? Infinity : Infinity;
    return Math.max(1, Math.min(cap, n * OVERLAP));
  }

  /** Whether a migration from source to destination may start now. */
  hasRoom(source: string, destination: string, m: Moving = {}): boolean {
    if (!this.gates(source, destination).every((l) => l.activeCount + l.pendingCount < l.concurrency)) return false;
    const links = this.settings.links;
    if (!links) return true;
    const dirty = m.dirtyMibps ?? 0;
    const expectedMs = m.expectedMs ?? Infinity;
    const waiting = m.waiting ?? NONE_WAITING;
    const now = this.timing.now();
    // auto: what will share the links when this one's set-up is over.
    const start = now + this.timing.setupMs;
    const counted = this.alive([...this.flights], start).filter((f) => !hopeless(f));
    const out = counted.filter((f) => f.source === source);
    const inn = counted.filter((f) => f.destination === destination);
    const auto = links.auto ?? { total: true, perSource: true, perDestination: true };
    const alone = this.alone(source, destination);
    // A guest dirties nothing the link carries while its local disk is copied.
    const memoryAt = start + (m.diskMs ?? 0);
    const added = { dirty, alone, from: start, memoryAt, until: start + expectedMs };
    if (auto.total && counted.length >= this.settings.total && !this.tail(counted, this.settings.total, added, waiting.total, Infinity)) return false;
    // Each link: at its streams, a tail move only; below, where sharing it is worth it over the time they share it.
    const fits = (on: Flight[], n: number | false, behind: number, nic: number, all: Flight[]) => {
      // Estimates err: every guest migrating on the link now, even one expected to end before this
      // one's set-up is over, must still converge beside it.
      if (all.length > 0 && !converges([...all.map((f) => pace(f, start)), { dirty: start >= memoryAt ? dirty : 0, alone }], nic, links.streamMibps)) return false;
      if (!this.safe(on, added, nic)) return false;
      // Full: what is on the link already fills its NIC (with one NIC everywhere: its streams). A driver's own cap is a p-limit (gates).
      if (n !== false && fills(on, nic, links.streamMibps)) return this.tail(on, n, added, behind, nic);
      return this.sharing(on, added, nic);
    };
    const flying = [...this.flights];
    return fits(out, auto.perSource && limitOn(this.settings.perSource, source), waiting.out, links.nicMibps(source), flying.filter((f) => f.source === source))
      && fits(inn, auto.perDestination && limitOn(this.settings.perDestination, destination), waiting.in, links.nicMibps(destination), flying.filter((f) => f.destination === destination));
  }

  /**
   * A link at its streams takes one more move where that ends the link's work sooner: waiting for
   * a stream, the move would end after the link has drained everything else (list scheduling's
   * tail: a long move left to run alone at the end), while started now it shares the link with the
   * others and all end about when the link has sent everything (each slower by the ratio of the
   * shares). Only where sharing costs the others next to nothing (quiet guests). behindMs: the
   * moves waiting for this link.
   */
  private tail(on: Flight[], streams: number, added: Candidate, behindMs: number, nicMibps: number): boolean {
    const expectedMs = added.until - added.from;
    if (!Number.isFinite(expectedMs) || on.length === 0) return false;
    const now = this.timing.now();
    let first = Infinity;
    let last = 0;
    let work = behindMs;
    for (const f of on) {
      if (!Number.isFinite(f.endsAt)) return false;
      first = Math.min(first, f.endsAt);
      last = Math.max(last, f.endsAt);
      work += Math.max(0, f.endsAt - now);
    }
    const stream = this.settings.links!.streamMibps;
    // Started now, each on the link (this one too) goes slower than its estimate (made at the rate
    // the link's streams share) by the ratio of the shares.
    const slower = Math.max(1, Math.min(stream, nicMibps / streams) / Math.min(stream, nicMibps / (on.length + 1)));
    const waited = Math.max(last, now + work / streams, Math.max(now, first) + expectedMs);
    const shared = now + Math.max((work + expectedMs) / streams, (expectedMs + this.timing.setupMs) * slower, (last - now) * slower);
    if (shared >= waited) return false;
    // Sharing costs next to nothing, whatever phase each is in.
    return linkValue([...on, added], nicMibps, stream) >= linkValue(on, nicMibps, stream) - TAIL_COST;
  }

  /**
   * Whether a migration (from `from`, on its memory from memoryAt, to `until`) moves the link's
   * guests faster by sharing it with those on it: what it adds to linkValue, as the guests on the
   * link start on their memory and end, summed over the time it shares the link, is positive. A
   * guest copying its local disk dirties nothing the link carries, so two long disk copies share
   * a link well even where their memory would not. Never where a guest would not converge. With no
   * expected end, sharing must be worth it at each of those moments.
   */
  private sharing(on: Flight[], m: Candidate, nic: number): boolean {
    const stream = this.settings.links!.streamMibps;
    const open = !Number.isFinite(m.until);
    const cuts = cutsOf(on, m);
    let gain = 0;
    let shared = 0;
    for (const [i, t] of cuts.entries()) {
      const self = { dirty: t >= m.memoryAt ? m.dirty : 0, alone: m.alone };
      const there = this.alive(on, t).map((f) => pace(f, t));
      if (there.length === 0) continue;
      const before = linkValue(there, nic, stream);
      const after = linkValue([...there, self], nic, stream);
      if (open) {
        if (after <= before + SHARE_GAIN) return false;
        continue;
      }
      const span = (cuts[i + 1] ?? m.until) - t;
      gain += (after - before) * span;
      shared += span;
    }
    return shared === 0 || gain > SHARE_GAIN * shared;
  }

  /**
   * Whether every guest on the link still converges beside this migration (by CONVERGE_MARGIN)
   * whenever one of them starts on its memory, counting on the estimates less: one on the link now
   * may take half as long again as expected.
   */
  private safe(on: Flight[], m: Candidate, nic: number): boolean {
    const stream = this.settings.links!.streamMibps;
    const now = this.timing.now();
    for (const t of cutsOf(on, m)) {
      const maybe = on.filter((f) => t < f.endsAt + SLOW * (f.endsAt - f.startedAt) || f.endsAt <= now);
      if (maybe.length > 0 && !converges([...maybe.map((f) => pace(f, t)), { dirty: t >= m.memoryAt ? m.dirty : 0, alone: m.alone }], nic, stream)) return false;
    }
    return true;
  }

  /** The rate a migration gets alone on its two links. */
  private alone(source: string, destination: string): number {
    const links = this.settings.links!;
    return Math.min(links.streamMibps, links.nicMibps(source), links.nicMibps(destination));
  }

  /** Of these flights, those still on their links at time t: all but those expected to end before then (an overdue one counts). */
  private alive(flights: Flight[], t: number): Flight[] {
    const now = this.timing.now();
    return flights.filter((f) => f.endsAt > t || f.endsAt <= now);
  }

  /** auto: the next moment a migration in flight comes within a set-up time of its expected end (a dispatcher looks again then), or undefined. */
  nextLook(): number | undefined {
    if (!this.settings.links || this.timing.setupMs <= 0) return undefined;
    const now = this.timing.now();
    let next = Infinity;
    for (const f of this.flights) {
      const t = f.endsAt - this.timing.setupMs;
      if (t > now && t < next) next = t;
    }
    return next === Infinity ? undefined : next;
  }

  /** No migration at all may start now (the total is taken): a dispatcher need look no further. */
  get full(): boolean {
    return this.total.activeCount + this.total.pendingCount >= this.total.concurrency;
  }

  /** Migrations in flight now. */
  get active(): number {
    return this.total.activeCount;
  }

  /**
   * Run task holding a slot of each limit. Call only when hasRoom(source, destination, m).
   */
  async run<T>(source: string, destination: string, task: () => Promise<T>, m: Moving = {}): Promise<T> {
    if (!this.hasRoom(source, destination, m)) throw new Error(`internal: no room for ${source} -> ${destination}`);
    const now = this.timing.now();
    const flight: Flight = {
      source, destination, dirty: m.dirtyMibps ?? 0, alone: this.settings.links ? this.alone(source, destination) : 0,
      startedAt: now,
      endsAt: m.expectedMs !== undefined && Number.isFinite(m.expectedMs) ? now + m.expectedMs : Infinity,
      memoryFrom: now + this.timing.setupMs + (m.diskMs ?? 0),
    };
    this.flights.add(flight);
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
      this.flights.delete(flight);
      release();
      // p-limit frees a slot just before its promise settles: once these settle, hasRoom is current.
      await Promise.all(slots);
    }
  }

  private gates(source: string, destination: string): LimitFunction[] {
    const auto = this.settings.links?.auto;
    return [
      this.total,
      of(this.outbound, source, () => this.hard(limitOn(this.settings.perSource, source), auto?.perSource, true)),
      of(this.inbound, destination, () => this.hard(limitOn(this.settings.perDestination, destination), auto?.perDestination, true)),
    ];
  }
}

function of(map: Map<string, LimitFunction>, host: string, n: () => number): LimitFunction {
  let limit = map.get(host);
  if (!limit) {
    limit = pLimit(n());
    map.set(host, limit);
  }
  return limit;
}
