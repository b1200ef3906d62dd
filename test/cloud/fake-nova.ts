/**
 * A small stand-in for keystone and Nova on 127.0.0.1, for the fast tier: enough of their REST
 * API for the OpenStack driver (services, servers, migrations, actions, aggregates), with a
 * server's migration advancing one step per read, and faults injected per request: a 5xx
 * answered after the request took effect or without it, a connection reset, or no answer at all.
 * The real cloud (cloud.ts) checks the same driver against a real Nova; this one makes faults
 * exact and fast.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FaultKind = '500' | '502' | '503' | 'reset' | 'hang';
export interface Fault {
  /** Which requests: method and a pattern of the path (after /compute). */
  method: string;
  path: RegExp;
  kind: FaultKind;
  /** For writes: the request takes effect before the fault (the answer is lost), or not at all. */
  applied?: boolean;
  /** How many matching requests it hits (default 1). */
  times?: number;
}

interface Svc { id: string; host: string; state: 'up' | 'down'; status: 'enabled' | 'disabled'; disabled_reason: string | null; updated_at: string; alive: boolean }
interface Srv { id: string; name: string; status: string; host: string; task: string | null; was: string; updated_at: string; seen: string }
interface Mig { id: number; instance: string; type: 'live-migration' | 'migration'; status: string; source: string; dest: string; created_at: string; updated_at: string; steps: number }
interface Agg { id: number; name: string; hosts: string[]; metadata: Record<string, string>; availability_zone: null }

const ts = () => new Date().toISOString().replace('Z', '');

export class FakeNova {
  services = new Map<string, Svc>();
  servers = new Map<string, Srv>();
  migrations: Mig[] = [];
  aggregates: Agg[] = [];
  faults: Fault[] = [];
  /** Hosts whose live migrations fail although their nova-compute lives (a pre-check that refuses, say). */
  refusesLive = new Set<string>();
  /** Reads a live migration takes to complete. */
  liveSteps = 3;
  /** Every request: method and path, in order. */
  log: { method: string; path: string }[] = [];
  private http?: HttpServer;
  private nextId = 1;
  private hung: ServerResponse[] = [];
  port = 0;

  constructor(hosts: string[]) {
    for (const h of hosts) this.services.set(h, { id: `svc-${h}`, host: h, state: 'up', status: 'enabled', disabled_reason: null, updated_at: ts(), alive: true });
  }

  addServer(name: string, host: string, status = 'ACTIVE'): string {
    const id = `00000000-0000-4000-8000-${String(this.servers.size + 1).padStart(12, '0')}`;
    this.servers.set(id, { id, name, status, host, task: null, was: status, updated_at: ts(), seen: '' });
    return id;
  }

  /** A nova-compute dies: it stops reporting in; Nova shows it down (at once here, not after service_down_time). */
  kill(host: string, showDown = true): void {
    const s = this.services.get(host)!;
    s.alive = false;
    if (showDown) s.state = 'down';
  }

  /** How many requests matched method and path. */
  count(method: string, path: RegExp): number {
    return this.log.filter((r) => r.method === method && path.test(r.path)).length;
  }

  async start(): Promise<string> {
    this.http = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.http!.listen(0, '127.0.0.1', resolve));
    this.port = (this.http.address() as AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const r of this.hung) r.destroy();
    this.http?.closeAllConnections();
    await new Promise<void>((resolve) => this.http?.close(() => resolve()) ?? resolve());
  }

  /** clouds.yaml text for this fake. */
  cloudsYaml(): string {
    return `clouds:\n  fake:\n    auth:\n      auth_url: http://127.0.0.1:${this.port}/identity/v3\n      username: admin\n      password: not-a-secret-x\n      project_name: admin\n`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? JSON.parse(text) : undefined;
    const url = new URL(req.url!, 'http://x');
    const method = req.method!;
    // Every live service reports in on each request, as nova-compute does every report_interval.
    for (const s of this.services.values()) if (s.alive) s.updated_at = ts();
    if (url.pathname === '/identity/v3/auth/tokens') return this.token(res);
    const path = url.pathname.replace(/^\/compute/, '') + url.search;
    this.log.push({ method, path });
    const fault = this.faults.find((f) => f.method === method && f.path.test(path));
    if (fault) {
      if ((fault.times ?? 1) <= 1) this.faults.splice(this.faults.indexOf(fault), 1);
      else fault.times = (fault.times ?? 1) - 1;
      if (fault.kind === 'reset') {
        if (fault.applied) this.route(method, url, body);
        req.socket.destroy();
        return;
      }
      if (fault.kind === 'hang') {
        if (fault.applied) this.route(method, url, body);
        this.hung.push(res);
        return;
      }
      if (fault.applied) this.route(method, url, body);
      res.writeHead(Number(fault.kind), { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'injected' }));
      return;
    }
    const [status, out] = this.route(method, url, body);
    this.stamp();
    res.writeHead(status, { 'content-type': 'application/json' }).end(out === undefined ? '' : JSON.stringify(out));
  }

  private token(res: ServerResponse): void {
    const base = `http://127.0.0.1:${this.port}`;
    const catalog = [
      { type: 'compute', endpoints: [{ interface: 'public', url: `${base}/compute` }] },
      { type: 'placement', endpoints: [{ interface: 'public', url: `${base}/placement` }] },
    ];
    res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': 'tok' })
      .end(JSON.stringify({ token: { expires_at: new Date(Date.now() + 3600_000).toISOString(), catalog } }));
  }

  private view(s: Srv) {
    return { id: s.id, name: s.name, status: s.status, 'OS-EXT-SRV-ATTR:host': s.host, 'OS-EXT-STS:task_state': s.task, flavor: { vcpus: 1, ram: 512, disk: 1 }, updated_at: s.updated_at };
  }

  /** A server whose status, host or task changed gets a new updated_at, as Nova's database row does. */
  private stamp(): void {
    for (const s of this.servers.values()) {
      const now = `${s.status}|${s.host}|${s.task}`;
      if (now !== s.seen) [s.seen, s.updated_at] = [now, ts()];
    }
  }

  /** Every migration in progress takes a step: a listing reads them all. */
  private advanceAll(): void {
    for (const id of new Set(this.migrations.map((m) => m.instance))) if (this.servers.has(id)) this.advance(id);
    this.stamp();
  }

  private migrationView(x: Mig) {
    return { id: x.id, uuid: `mig-${x.id}`, instance_uuid: x.instance, migration_type: x.type, status: x.status, dest_compute: x.dest, source_compute: x.source, created_at: x.created_at, updated_at: x.updated_at };
  }

  /** A migration in progress takes one step on each read of it or its server. */
  private advance(id: string): void {
    const s = this.servers.get(id)!;
    for (const m of this.migrations.filter((x) => x.instance === id && !['completed', 'error', 'cancelled', 'confirmed', 'finished'].includes(x.status))) {
      const dest = this.services.get(m.dest)!;
      m.steps++;
      m.updated_at = ts();
      if (m.type === 'live-migration') {
        if (!dest.alive || this.refusesLive.has(m.dest)) {
          if (m.steps >= 2) [m.status, s.status, s.task] = ['error', s.was, null];
        } else if (m.steps === 1) m.status = 'running';
        else if (m.steps >= this.liveSteps) [m.status, s.host, s.status, s.task] = ['completed', m.dest, s.was, null];
      } else if (dest.alive && m.steps >= 2) {
        // prep_resize on the destination, then the copy: the server waits to be confirmed there.
        [m.status, s.host, s.status, s.task] = ['finished', m.dest, 'VERIFY_RESIZE', null];
      }
    }
  }

  private route(method: string, url: URL, body: any): [number, unknown] {
    const p = url.pathname.replace(/^\/compute/, '');
    const q = url.searchParams;
    let m: RegExpMatchArray | null;
    if (method === 'GET' && p === '/os-services') {
      const host = q.get('host');
      return [200, { services: [...this.services.values()].filter((s) => !host || s.host === host).map(({ alive: _, ...s }) => s) }];
    }
    if (method === 'PUT' && (m = p.match(/^\/os-services\/(.+)$/))) {
      const s = [...this.services.values()].find((x) => x.id === m![1]);
      if (!s) return [404, {}];
      s.status = body.status;
      s.disabled_reason = body.status === 'disabled' ? body.disabled_reason ?? null : null;
      const { alive: _, ...view } = s;
      return [200, { service: view }];
    }
    if (method === 'GET' && p === '/servers/detail') {
      this.advanceAll();
      const since = Date.parse(q.get('changes-since') ?? '1970-01-01T00:00:00Z');
      return [200, { servers: [...this.servers.values()].filter((s) => Date.parse(`${s.updated_at}Z`) >= since && (!q.has('host') || s.host === q.get('host'))).map((s) => this.view(s)) }];
    }
    if (method === 'GET' && (m = p.match(/^\/servers\/([^/]+)$/))) {
      const s = this.servers.get(m[1]!);
      if (!s) return [404, {}];
      this.advance(s.id);
      return [200, { server: this.view(s) }];
    }
    if (method === 'GET' && p === '/os-migrations' && !q.has('instance_uuid')) {
      // The poller's listing (2.59+): everything changed since, newest first, unpaged here.
      this.advanceAll();
      const since = Date.parse(q.get('changes-since') ?? '1970-01-01T00:00:00Z');
      const list = this.migrations.filter((x) => Date.parse(`${x.updated_at}Z`) >= since && (!q.has('migration_type') || x.type === q.get('migration_type')));
      return [200, { migrations: list.reverse().map((x) => this.migrationView(x)) }];
    }
    if (method === 'GET' && p === '/os-migrations') {
      const id = q.get('instance_uuid')!;
      if (this.servers.has(id)) this.advance(id);
      const list = this.migrations.filter((x) => x.instance === id && x.type === q.get('migration_type'));
      return [200, { migrations: list.map((x) => this.migrationView(x)) }];
    }
    if (method === 'GET' && (m = p.match(/^\/servers\/([^/]+)\/migrations$/))) {
      return [200, { migrations: this.migrations.filter((x) => x.instance === m![1] && x.type === 'live-migration' && ['queued', 'preparing', 'running'].includes(x.status)).map((x) => ({ id: x.id, status: x.status })) }];
    }
    if (method === 'DELETE' && (m = p.match(/^\/servers\/([^/]+)\/migrations\/(\d+)$/))) {
      const mig = this.migrations.find((x) => x.id === Number(m![2]) && x.instance === m![1]);
      if (!mig || !['queued', 'preparing', 'running'].includes(mig.status)) return [409, {}];
      const s = this.servers.get(mig.instance)!;
      [mig.status, s.status, s.task] = ['cancelled', s.was, null];
      return [202, undefined];
    }
    if (method === 'GET' && (m = p.match(/^\/servers\/([^/]+)\/os-instance-actions$/))) return [200, { instanceActions: [] }];
    if (method === 'POST' && (m = p.match(/^\/servers\/([^/]+)\/action$/))) return this.action(m[1]!, body);
    if (method === 'GET' && p === '/os-aggregates') return [200, { aggregates: this.aggregates }];
    if (method === 'POST' && p === '/os-aggregates') {
      if (this.aggregates.some((a) => a.name === body.aggregate.name)) return [409, {}];
      const a: Agg = { id: this.nextId++, name: body.aggregate.name, hosts: [], metadata: {}, availability_zone: null };
      this.aggregates.push(a);
      return [200, { aggregate: a }];
    }
    if ((m = p.match(/^\/os-aggregates\/(\d+)(\/action)?$/))) {
      const a = this.aggregates.find((x) => x.id === Number(m![1]));
      if (!a) return [404, {}];
      if (method === 'DELETE') {
        if (a.hosts.length) return [400, {}];
        this.aggregates.splice(this.aggregates.indexOf(a), 1);
        return [200, undefined];
      }
      if (body.set_metadata) {
        // As Nova: a key set to null is removed.
        for (const [k, v] of Object.entries(body.set_metadata.metadata as Record<string, string | null>)) {
          if (v === null) delete a.metadata[k];
          else a.metadata[k] = v;
        }
      }
      if (body.add_host) {
        if (a.hosts.includes(body.add_host.host)) return [409, {}];
        a.hosts.push(body.add_host.host);
      }
      if (body.remove_host) {
        if (!a.hosts.includes(body.remove_host.host)) return [404, {}];
        a.hosts = a.hosts.filter((h) => h !== body.remove_host.host);
      }
      return [200, { aggregate: a }];
    }
    return [404, { error: `the fake does not know ${method} ${p}` }];
  }

  private action(id: string, body: any): [number, unknown] {
    const s = this.servers.get(id);
    if (!s) return [404, {}];
    const mig = (type: Mig['type'], dest: string) => {
      this.migrations.push({ id: this.nextId++, instance: id, type, status: type === 'migration' ? 'pre-migrating' : 'queued', source: s.host, dest, created_at: ts(), updated_at: ts(), steps: 0 });
    };
    if (body['os-migrateLive']) {
      if (s.task || !['ACTIVE', 'PAUSED'].includes(s.status)) return [409, {}];
      [s.was, s.status, s.task] = [s.status, 'MIGRATING', 'migrating'];
      mig('live-migration', body['os-migrateLive'].host);
      return [202, undefined];
    }
    if (body.migrate) {
      if (s.task || !['ACTIVE', 'SHUTOFF'].includes(s.status)) return [409, {}];
      [s.was, s.task] = [s.status, 'resize_prep'];
      mig('migration', body.migrate.host);
      return [202, undefined];
    }
    if ('confirmResize' in body) {
      if (s.status !== 'VERIFY_RESIZE') return [409, {}];
      const m = this.migrations.filter((x) => x.instance === id && x.type === 'migration').at(-1)!;
      [m.status, s.status] = ['confirmed', s.was];
      return [204, undefined];
    }
    return [400, {}];
  }
}
