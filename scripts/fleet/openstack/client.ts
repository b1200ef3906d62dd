/**
 * A small OpenStack REST client: keystone v3 password authentication scoped to a project, the
 * token renewed before it expires (and once on a 401), endpoints from the service catalog, and
 * requests with an explicit compute microversion. Credentials come from clouds.yaml (a cloud
 * name) or the OS_* environment variables, never from a plan; the password is kept in this
 * object only and never appears in an error message.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
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

interface CatalogEntry {
  type: string;
  endpoints: { interface: string; region_id?: string; url: string }[];
}

export interface ClientOptions {
  /** Longest wait for one request, ms. */
  timeoutMs?: number;
  /** Authenticate again when the token has less than this left, ms. */
  renewBeforeMs?: number;
}

export class OpenStack {
  private token?: { value: string; expires: number; catalog: CatalogEntry[] };
  /** Tokens issued to this client so far (the first, then each renewal). */
  authentications = 0;
  private readonly timeoutMs: number;
  private readonly renewBeforeMs: number;

  constructor(private readonly creds: Credentials, opts: ClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.renewBeforeMs = opts.renewBeforeMs ?? 5 * 60_000;
  }

  private async authenticate(): Promise<NonNullable<OpenStack['token']>> {
    const c = this.creds;
    const body = {
      auth: {
        identity: { methods: ['password'], password: { user: { name: c.username, domain: { name: c.userDomainName }, password: c.password } } },
        scope: { project: { name: c.projectName, domain: { name: c.projectDomainName } } },
      },
    };
    const url = `${c.authUrl.replace(/\/+$/, '').replace(/\/v3$/, '')}/v3/auth/tokens`;
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(this.timeoutMs) });
    if (!r.ok) throw new HttpError(r.status, 'POST', url, `authentication as ${c.username} failed`);
    const json = (await r.json()) as { token: { expires_at: string; catalog: CatalogEntry[] } };
    this.token = { value: r.headers.get('x-subject-token')!, expires: Date.parse(json.token.expires_at), catalog: json.token.catalog };
    this.authentications++;
    return this.token;
  }

  private async current() {
    if (!this.token || this.token.expires - Date.now() < this.renewBeforeMs) return this.authenticate();
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

  /** A request to a service; JSON in and out. A 401 re-authenticates once. */
  async request<T = unknown>(service: string, method: string, path: string, opts: { body?: unknown; microversion?: string; headers?: Record<string, string>; raw?: Buffer } = {}): Promise<{ status: number; body: T; headers: Headers }> {
    for (let attempt = 0; ; attempt++) {
      const t = await this.current();
      const url = `${await this.endpoint(service)}${path}`;
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
      const r = await fetch(url, { method, headers, ...(payload !== undefined ? { body: payload } : {}), signal: AbortSignal.timeout(this.timeoutMs) });
      if (r.status === 401 && attempt === 0) {
        this.token = undefined;
        continue;
      }
      const text = await r.text();
      if (!r.ok) throw new HttpError(r.status, method, url, text);
      return { status: r.status, body: (text ? JSON.parse(text) : {}) as T, headers: r.headers };
    }
  }
}
