/**
 * A small OpenStack REST client: keystone v3 password authentication scoped to a project, the
 * token renewed before it expires (and once on a 401), endpoints from the service catalog, and
 * requests with an explicit compute microversion. Credentials come from clouds.yaml (a cloud
 * name) or the OS_* environment variables, never from a plan; the password is kept in this
 * object only and never appears in an error message.
 *
 * Transient faults (a 5xx or 429, a connection refused or reset, a request that timed out) are
 * retried with exponential backoff (p-retry) for reads, and for keystone's token request; a
 * write (POST, PUT, DELETE, PATCH) is re-sent only when its connection was refused, so Nova never
 * saw it. Any other failed write is thrown as it is: whether Nova took it is for the caller to
 * decide from Nova's state (see isTransient).
 *
 * Every request, keystone's and retries included, first takes a token from the client's budget
 * (a token bucket: `requestsPerSecond` on average, bursts of as many), so a run never sends Nova
 * more than it was given. Requests are counted per method and path template (ids and query values
 * left out), so a test or a benchmark can say how many calls a migration cost.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import pRetry from 'p-retry';
import { parse } from 'yaml';

export interface Credentials {
  authUrl: string;
  username: string;
  password: string;
  projectName: string;
  userDomainName: string;
  projectDomainName: string;
  regionName?: string;
}

/** Where clouds.yaml is looked for, as openstacksdk does. */
export function cloudsFiles(explicit?: string): string[] {
  return [explicit, process.env.OS_CLIENT_CONFIG_FILE, 'clouds.yaml', join(homedir(), '.config/openstack/clouds.yaml'), '/etc/openstack/clouds.yaml']
    .filter((f): f is string => Boolean(f));
}

/** Credentials of a named cloud in clouds.yaml, or else from OS_* variables. */
export function credentialsFor(cloud: string | undefined, file?: string, env: NodeJS.ProcessEnv = process.env): Credentials {
  if (cloud) {
    for (const f of cloudsFiles(file)) {
      if (!existsSync(f)) continue;
      const c = (parse(readFileSync(f, 'utf8')) as { clouds?: Record<string, { auth?: Record<string, string>; region_name?: string }> }).clouds?.[cloud];
      if (!c?.auth) continue;
      const a = c.auth;
      return {
        authUrl: a.auth_url, username: a.username, password: a.password, projectName: a.project_name,
        userDomainName: a.user_domain_name ?? 'Default', projectDomainName: a.project_domain_name ?? 'Default',
        ...(c.region_name ? { regionName: c.region_name } : {}),
      };
    }
    throw new Error(`cloud '${cloud}' is in no clouds.yaml (looked in ${cloudsFiles(file).join(', ')})`);
  }
  const missing = ['OS_AUTH_URL', 'OS_USERNAME', 'OS_PASSWORD', 'OS_PROJECT_NAME'].filter((k) => !env[k]);
  if (missing.length) throw new Error(`no cloud named and ${missing.join(', ')} not set`);
  return {
    authUrl: env.OS_AUTH_URL!, username: env.OS_USERNAME!, password: env.OS_PASSWORD!, projectName: env.OS_PROJECT_NAME!,
    userDomainName: env.OS_USER_DOMAIN_NAME ?? 'Default', projectDomainName: env.OS_PROJECT_DOMAIN_NAME ?? 'Default',
    ...(env.OS_REGION_NAME ? { regionName: env.OS_REGION_NAME } : {}),
  };
}

export class HttpError extends Error {
  constructor(readonly status: number, readonly method: string, readonly url: string, readonly body: string) {
    super(`${method} ${url}: HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

/** The request got no HTTP answer: the connection was refused (never delivered), reset, or the answer did not come in time. */
export class TransportError extends Error {
  constructor(readonly kind: 'refused' | 'reset' | 'timeout', readonly method: string, readonly url: string, why: string) {
    super(`${method} ${url}: ${kind === 'refused' ? 'connection refused' : kind === 'reset' ? 'connection reset' : 'no answer in time'} (${why})`);
  }
}

/** A failure that may pass if the same request is made again later: a 5xx or 429, or no HTTP answer at all. */
export function isTransient(e: unknown): boolean {
  return e instanceof TransportError || (e instanceof HttpError && (e.status >= 500 || e.status === 429));
}

/** The request certainly did not reach the service (its connection was refused), so sending it again cannot do it twice. */
export function neverDelivered(e: unknown): boolean {
  return e instanceof TransportError && e.kind === 'refused';
}

const NOT_DELIVERED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** fetch's own failures, classified: a timeout, a connection that was never made, or one that broke. Anything else is a bug and rethrown. */
function transportError(e: unknown, method: string, url: string): unknown {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string; errors?: { code?: string }[] } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return new TransportError('timeout', method, url, err.message ?? 'timed out');
  if (e instanceof TypeError) {
    const code = err.cause?.code ?? err.cause?.errors?.[0]?.code ?? '';
    return new TransportError(NOT_DELIVERED.has(code) ? 'refused' : 'reset', method, url, code || err.cause?.message || err.message || 'network error');
  }
  return e;
}

/** Errors thrown before the request itself was sent (getting a token). */
const unsent = new WeakSet<object>();

/**
 * How transient faults are retried: 6 retries, the first after 0.5 s, doubling up to 8 s between
 * two (randomized x1 to x2): 23.5 to 47 s of waiting in all, besides the requests' own timeouts.
 */
export const RETRY = { retries: 6, minTimeout: 500, factor: 2, maxTimeout: 8000, randomize: true };

interface CatalogEntry {
  type: string;
  endpoints: { interface: string; region_id?: string; url: string }[];
}

/** How many requests per second a client sends at most, on average (fleet.openstack.requests_per_second's default). */
export const REQUESTS_PER_SECOND = 20;

/**
 * A token bucket: `rate` tokens a second, holding at most `burst`. take() resolves when a token
 * is had; callers are served in order.
 */
export class Budget {
  private tokens: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();
  /** Time spent waiting for a token, ms, all callers together. */
  waitedMs = 0;

  constructor(readonly rate: number, readonly burst = Math.max(1, rate)) {
    this.tokens = this.burst;
  }

  take(): Promise<void> {
    const turn = this.queue.then(async () => {
      for (;;) {
        const now = Date.now();
        this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
        this.last = now;
        if (this.tokens >= 1) {
          this.tokens -= 1;
          return;
        }
        const wait = Math.ceil(((1 - this.tokens) * 1000) / this.rate);
        this.waitedMs += wait;
        await new Promise((r) => setTimeout(r, wait));
      }
    });
    this.queue = turn;
    return turn;
  }
}

/**
 * A request's path as a template, for counting: ids (UUIDs, numbers, hex tokens) as {id}, query
 * values left out (`GET /servers/{id}`, `GET /os-migrations?changes-since&marker`).
 */
export function routeOf(method: string, url: string): string {
  const u = new URL(url, 'http://x');
  const path = u.pathname.split('/').map((seg) => (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(seg) || /^\d+$/.test(seg) || /^[0-9a-f]{32}$/i.test(seg) ? '{id}' : seg)).join('/');
  const keys = [...new Set([...u.searchParams.keys()])].sort();
  return `${method} ${path}${keys.length ? `?${keys.join('&')}` : ''}`;
}

export interface ClientOptions {
  /** The request budget: at most this many requests a second on average (default REQUESTS_PER_SECOND). */
  requestsPerSecond?: number;
  /** Longest wait for one request, ms. */
  timeoutMs?: number;
  /** Authenticate again when the token has less than this left, ms. */
  renewBeforeMs?: number;
  /** The retry policy for transient faults (default RETRY). */
  retry?: Partial<typeof RETRY>;
}

export class OpenStack {
  private token?: { value: string; expires: number; catalog: CatalogEntry[] };
  /** Tokens issued to this client so far (the first, then each renewal). */
  authentications = 0;
  private readonly timeoutMs: number;
  private readonly renewBeforeMs: number;
  private readonly retry: typeof RETRY;
  /** Requests sent, retries included (tests read it). */
  sent = 0;
  /** Requests sent per route (routeOf), retries included. */
  readonly routes = new Map<string, number>();
  readonly budget: Budget;
  /** The newest Date header a compute answer carried (Nova's clock, whole seconds), epoch ms. */
  novaDate?: number;

  constructor(private readonly creds: Credentials, opts: ClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.renewBeforeMs = opts.renewBeforeMs ?? 5 * 60_000;
    this.retry = { ...RETRY, ...opts.retry };
    this.budget = new Budget(opts.requestsPerSecond ?? REQUESTS_PER_SECOND);
  }

  /** call, again after a transient fault while retry(e) says so, with backoff; the last fault is thrown. */
  private retried<T>(call: () => Promise<T>, retry: (e: unknown) => boolean): Promise<T> {
    return pRetry(call, { ...this.retry, shouldRetry: ({ error }) => retry(error) });
  }

  /** One HTTP exchange: the answer, or a TransportError. */
  private async send(url: string, init: RequestInit & { method: string }): Promise<{ r: Response; text: string }> {
    await this.budget.take();
    this.sent++;
    const route = routeOf(init.method, url);
    this.routes.set(route, (this.routes.get(route) ?? 0) + 1);
    try {
      const r = await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
      return { r, text: await r.text() };
    } catch (e) {
      throw transportError(e, init.method, url);
    }
  }

  /** A token (keystone's POST only issues one: safe to repeat; the request that needs it retries it). */
  private async authenticate(): Promise<NonNullable<OpenStack['token']>> {
    const c = this.creds;
    const body = {
      auth: {
        identity: { methods: ['password'], password: { user: { name: c.username, domain: { name: c.userDomainName }, password: c.password } } },
        scope: { project: { name: c.projectName, domain: { name: c.projectDomainName } } },
      },
    };
    const url = `${c.authUrl.replace(/\/+$/, '').replace(/\/v3$/, '')}/v3/auth/tokens`;
    const { r, text } = await this.send(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!r.ok) throw new HttpError(r.status, 'POST', url, `authentication as ${c.username} failed`);
    const json = JSON.parse(text) as { token: { expires_at: string; catalog: CatalogEntry[] } };
    this.token = { value: r.headers.get('x-subject-token')!, expires: Date.parse(json.token.expires_at), catalog: json.token.catalog };
    this.authentications++;
    return this.token;
  }

  /** The token being asked for, shared by every request that needs one meanwhile (one POST, not one per request). */
  private authenticating?: Promise<NonNullable<OpenStack['token']>>;

  private async current() {
    if (!this.token || this.token.expires - Date.now() < this.renewBeforeMs) {
      this.authenticating ??= this.authenticate().finally(() => {
        this.authenticating = undefined;
      });
      return this.authenticating;
    }
    return this.token;
  }

  async endpoint(type: string): Promise<string> {
    const t = await this.current();
    const e = t.catalog.find((x) => x.type === type)?.endpoints.find((x) => x.interface === 'public' && (!this.creds.regionName || x.region_id === this.creds.regionName));
    if (!e) throw new Error(`no public ${type} endpoint in the service catalog`);
    return e.url.replace(/\/+$/, '');
  }

  /**
   * Every item of a collection, page by page. Nova returns at most its max_limit (1000 by default).
   * With `marker`, a `<key>_links` next link says there is more, and the next page is asked for
   * from the last item's marker (following the link itself would trust the host name Nova put in
   * it); without, pages are asked for by offset until one comes back empty (server groups).
   */
  async list<T>(service: string, path: string, key: string, opts: { microversion?: string; marker?: (item: T) => string } = {}): Promise<T[]> {
    const all: T[] = [];
    const sep = path.includes('?') ? '&' : '?';
    const { marker, ...req } = opts;
    for (let next: string | undefined; ;) {
      const r = await this.request<Record<string, unknown>>(service, 'GET', next === undefined ? path : `${path}${sep}${next}`, req);
      const page = (r.body[key] ?? []) as T[];
      all.push(...page);
      if (page.length === 0) return all;
      if (marker) {
        const links = r.body[`${key}_links`] as { rel: string }[] | undefined;
        if (!links?.some((l) => l.rel === 'next')) return all;
        next = `marker=${encodeURIComponent(marker(page.at(-1)!))}`;
      } else {
        next = `offset=${all.length}`;
      }
    }
  }

  /**
   * A request to a service; JSON in and out. A 401 re-authenticates once. Transient faults are
   * retried (RETRY) for reads (GET, HEAD, or idempotent: true); a write only when its connection
   * was refused.
   */
  async request<T = unknown>(service: string, method: string, path: string, opts: { body?: unknown; microversion?: string; headers?: Record<string, string>; raw?: Buffer; idempotent?: boolean } = {}): Promise<{ status: number; body: T; headers: Headers }> {
    const idempotent = opts.idempotent ?? (method === 'GET' || method === 'HEAD');
    // A write whose token could not be had was never sent: retried as a read would be.
    return this.retried(() => this.requestOnce<T>(service, method, path, opts), (e) => (idempotent || unsent.has(e as object) ? isTransient(e) : neverDelivered(e)));
  }

  private async requestOnce<T>(service: string, method: string, path: string, opts: { body?: unknown; microversion?: string; headers?: Record<string, string>; raw?: Buffer }): Promise<{ status: number; body: T; headers: Headers }> {
    for (let attempt = 0; ; attempt++) {
      let t: NonNullable<OpenStack['token']>;
      let url: string;
      try {
        t = await this.current();
        url = `${await this.endpoint(service)}${path}`;
      } catch (e) {
        if (e instanceof Error) unsent.add(e);
        throw e;
      }
      const headers: Record<string, string> = { 'x-auth-token': t.value, accept: 'application/json', ...opts.headers };
      if (opts.microversion) headers['openstack-api-version'] = `${service === 'placement' ? 'placement' : 'compute'} ${opts.microversion}`;
      let payload: string | Buffer | undefined;
      if (opts.raw) {
        payload = opts.raw;
        headers['content-type'] = 'application/octet-stream';
      } else if (opts.body !== undefined) {
        payload = JSON.stringify(opts.body);
        headers['content-type'] = 'application/json';
      }
      const { r, text } = await this.send(url, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
      const date = service === 'compute' ? Date.parse(r.headers.get('date') ?? '') : NaN;
      if (!Number.isNaN(date)) this.novaDate = Math.max(this.novaDate ?? 0, date);
      if (r.status === 401 && attempt === 0) {
        this.token = undefined;
        continue;
      }
      if (!r.ok) throw new HttpError(r.status, method, url, text);
      return { status: r.status, body: (text ? JSON.parse(text) : {}) as T, headers: r.headers };
    }
  }
}
