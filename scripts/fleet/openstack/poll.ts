/**
 * One poller per driver for every migration in flight. Once per poll interval, while anything
 * waits on it, it lists what Nova changed since its last poll: the migrations
 * (`GET /os-migrations?changes-since=`, 2.59+) and then the servers
 * (`GET /servers/detail?all_tenants=1&changes-since=`), page by page, and keeps the newest record
 * of each watched server and of its migrations. Each waiting migration reads its own from there,
 * so a poll costs the same two listings (a page per max_limit changed items) whether 1 or 100
 * migrations are in flight, where a loop per server would read each server and its migration.
 *
 * The window: each poll asks for changes since the moment the previous poll was sent, on Nova's
 * clock (the Date header of the last compute answer before it, whole seconds) less a slack for
 * the skew between nova-api and the conductors and computes that write the records. A record
 * seen twice is the same record again. Migrations are listed before servers: Nova moves a live
 * server to its destination before it marks the migration completed, so a completed migration
 * comes with its server already there.
 */
import type { Clock } from '../driver.ts';

/** How far back, on Nova's clock, a poll's window reaches beyond the previous poll's sending (ms). */
export const SLACK_MS = 2000;

/** The two listings a poll makes: everything changed since `since` (ISO 8601, UTC). */
export interface Listings<M, S> {
  migrations(since: string): Promise<M[]>;
  servers(since: string): Promise<S[]>;
}

export class Watch<M extends { id: number; instance_uuid: string }, S extends { id: string }> {
  private readonly watched = new Map<string, number>();
  private readonly migrations = new Map<string, Map<number, M>>();
  private readonly servers = new Map<string, S>();
  /** The highest migration id seen per server, kept after it is no longer watched (a retry must not take an old record for its own). */
  private readonly newest = new Map<string, number>();
  private since?: number;
  private waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private running = false;
  /** Polls made (each: one listing of migrations, one of servers). */
  polls = 0;

  /** novaNow: Nova's clock as the client last saw it (epoch ms), if it has seen it. */
  constructor(private readonly list: Listings<M, S>, private readonly clock: Clock, private readonly pollMs: number, private readonly novaNow: () => number | undefined) {}

  /** Keep what the polls see of server id from now on, until the returned release is called (once per watch). */
  watch(id: string): () => void {
    const from = this.nowOnNova() - SLACK_MS;
    this.since = Math.min(this.since ?? from, from);
    this.watched.set(id, (this.watched.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.watched.get(id) ?? 1) - 1;
      if (n > 0) {
        this.watched.set(id, n);
        return;
      }
      this.watched.delete(id);
      this.migrations.delete(id);
      this.servers.delete(id);
    };
  }

  watching(id: string): boolean {
    return this.watched.has(id);
  }

  /** The moment after which a migration of id counts as new (Nova's clock, slack included), and the newest migration id already seen of it. */
  mark(id: string): { since: number; after: number } {
    return { since: this.nowOnNova() - SLACK_MS, after: this.newest.get(id) ?? 0 };
  }

  /** Resolves after the next poll (at most one poll interval from now, plus the poll itself); rejects when that poll failed. */
  next(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.running) void this.loop();
    });
  }

  /** The migrations of id the polls have seen since it was watched. */
  migrationsOf(id: string): M[] {
    return [...(this.migrations.get(id)?.values() ?? [])];
  }

  /** The server as the polls last saw it change, if they did since it was watched. */
  serverOf(id: string): S | undefined {
    return this.servers.get(id);
  }

  private nowOnNova(): number {
    // Before any compute answer (not the case after an inventory), the local clock less a margin.
    return this.novaNow() ?? Date.now() - 60_000;
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length) {
        await this.clock.sleep(this.pollMs);
        const batch = this.waiting.splice(0);
        try {
          await this.poll();
          for (const w of batch) w.resolve();
        } catch (e) {
          for (const w of batch) w.reject(e);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async poll(): Promise<void> {
    const sentAt = this.nowOnNova();
    const since = new Date(this.since ?? sentAt - SLACK_MS).toISOString().replace(/\.\d+Z$/, 'Z');
    const migrations = await this.list.migrations(since);
    const servers = await this.list.servers(since);
    this.polls++;
    for (const m of migrations) {
      if (!this.watched.has(m.instance_uuid)) continue;
      let mine = this.migrations.get(m.instance_uuid);
      if (!mine) this.migrations.set(m.instance_uuid, (mine = new Map()));
      mine.set(m.id, m);
      this.newest.set(m.instance_uuid, Math.max(this.newest.get(m.instance_uuid) ?? 0, m.id));
    }
    for (const s of servers) if (this.watched.has(s.id)) this.servers.set(s.id, s);
    // The next window starts where this one was sent (less the slack): nothing changed after that is missed.
    this.since = sentAt - SLACK_MS;
  }
}
