/**
 * The OpenStack driver: Nova's REST API (and Placement's) at one explicit microversion.
 *
 * Microversion 2.84, the oldest that has everything read here: from 2.34 a live migration's
 * pre-check failure arrives asynchronously (the POST answers 202; the migration record and the
 * instance action tell the outcome), from 2.56 a cold migration honours the requested host (below
 * it the host is silently ignored), 2.80 filters os-migrations by instance and type, and 2.84
 * gives the instance action's event details. Newer ones change nothing this driver uses.
 *
 * Hosts are compute services: capacity is placement's inventory (total - reserved) x
 * allocation ratio, so plans for OpenStack keep overcommit 1 and reserve 0. A source's fence is
 * its compute service disabled with a reason naming the plan; a destination's lease is a host
 * aggregate (lease.ts). Outcomes are decided from where Nova says the server is, never from an
 * error text; a write whose answer was lost is judged from Nova's state (write.ts); every wait
 * has a bound.
 *
 * Waits poll by listing (poll.ts): one poller per driver lists the migrations and servers Nova
 * changed since its last poll, once a poll interval, for every migration in flight; the compute
 * services are listed at most once a poll interval too. All requests share the client's budget
 * (fleet.openstack.requests_per_second). `polling: 'per-server'` (a driver option for benchmarks,
 * not in plans) keeps the older loop, each migration reading its own server and migration.
 */
import { messageOf, userError } from '../../errors.ts';
import { withDefaults } from '../../plan/defaults.ts';
import type { OpenStackFleet } from '../../plan/plan-types.ts';
import {
  failure, wallClock,
  type CheckResult, type Clock, type ColdRequest, type Driver, type LiveRequest, type Location, type MigrationOutcome, type Outcome,
  type PreflightItem, type RecoverRequest, type Recovery,
} from '../driver.ts';
import type { Fence, Inventory, Resources, Vm, VmState } from '../types.ts';
import { credentialsFor, HttpError, isTransient, OpenStack, type RETRY } from './client.ts';
import { leasesByHost, liftLease, takeLease, type Aggregate, type LeaseNova } from './lease.ts';
import { Watch } from './poll.ts';
import { uniqueNames } from '../names.ts';
import { writeOnce, type Written } from './write.ts';


export const MICROVERSION = '2.84';
/** Disabled reasons evacuator writes start with this; the rest is the fence as JSON. */
const FENCE_PREFIX = 'evacuator:';

/** How long the driver waits for each thing (ms); every wait has one of these bounds. */
export interface Timing {
  /** Pause between two reads of a migration or a server. */
  pollMs: number;
  /** How long Nova's state is looked at for the effect of a write whose answer was lost. */
  takenWindowMs: number;
  /** Longest wait for a live migration's record once the request was taken. */
  noRecordMs: number;
  /** How long Nova may stay unreadable during a wait before it counts as unreachable. */
  outageMs: number;
  /** Longest wait for a confirmed resize to settle. */
  confirmMs: number;
  /** Longest wait, after a migration failed, for the destination's nova-compute to show whether it lives (a heartbeat newer than the failure, or state down). */
  heartbeatMs: number;
  /** How long a live migration may go on after its abort was asked for. */
  abortGraceMs: number;
}

export const TIMING: Timing = {
  pollMs: 1000, takenWindowMs: 20_000, noRecordMs: 60_000, outageMs: 120_000, confirmMs: 120_000, heartbeatMs: 90_000, abortGraceMs: 60_000,
};

interface Service {
  id: string; host: string; state: 'up' | 'down'; status: 'enabled' | 'disabled'; disabled_reason: string | null;
  updated_at?: string | null; forced_down?: boolean;
}
interface Server {
  id: string; name: string; status: string; 'OS-EXT-SRV-ATTR:host': string | null; 'OS-EXT-STS:task_state': string | null;
  flavor: { vcpus: number; ram: number; disk: number };
}
interface Migration {
  id: number; status: string; dest_compute: string; source_compute: string; updated_at?: string | null;
  created_at?: string; instance_uuid?: string; migration_type?: string; uuid?: string;
  memory_processed_bytes?: number; memory_remaining_bytes?: number; memory_total_bytes?: number; disk_processed_bytes?: number;
}
interface Hypervisor { id: string; hypervisor_hostname: string; hypervisor_version: number; hypervisor_type: string; service: { host: string } }

const STATES: Record<string, VmState> = { ACTIVE: 'running', PAUSED: 'paused', SHUTOFF: 'shutoff', SUSPENDED: 'suspended', ERROR: 'crashed' };

/**
 * A server's state: ACTIVE, PAUSED, SHUTOFF, SUSPENDED and ERROR map to theirs; any other status
 * (MIGRATING, RESIZE, VERIFY_RESIZE, REBUILD, REBOOT, BUILD, RESCUE, SHELVED, ...) or a task in
 * progress is busy.
 */
export function stateOf(s: Pick<Server, 'status' | 'OS-EXT-STS:task_state'>): VmState {
  if (s['OS-EXT-STS:task_state']) return 'busy';
  return STATES[s.status] ?? 'busy';
}

/** Nova's timestamps (UTC, often without a zone), as epoch ms. */
const when = (t: string | null | undefined) => (t ? Date.parse(/Z$|[+-]\d\d:?\d\d$/.test(t) ? t : `${t}Z`) : NaN);

/** Where the server is, for a person. */
const at = (vm: Vm, s: Server) => `${vm.name} is ${s.status}${s['OS-EXT-STS:task_state'] ? ` (task ${s['OS-EXT-STS:task_state']})` : ''} on ${s['OS-EXT-SRV-ATTR:host']}`;

/** How a migration's wait reads Nova: the shared poller's listings (the default), or its own server and migration each poll. */
export type Polling = 'list' | 'per-server';

/** Tells a migration this run asked for from older records of the same server. */
type Fresh = (m: Migration) => boolean;

export class OpenStackDriver implements Driver {
  readonly name = 'openstack';
  /** Nova's max_concurrent_live_migrations default: a compute runs one outgoing live migration at a time; more only queue there. */
  readonly perHostMigrations = 1;
  /** Nova's API, conductor and scheduler before a migration starts, and its clean-up after: a prior the run corrects from its own migrations. */
  readonly setupS = 5;
  /** A prior: Nova's stop, its cold migration (resize) and confirm, and the start. */
  readonly coldS = { shutdown: 10, boot: 15 };
  readonly clock: Clock;
  private readonly os: OpenStack;
  private ids = new Map<string, string>();
  private services = new Map<string, Service>();
  private providers = new Map<string, string>();
  /** When an abort was asked for, per server id (it may come before Nova has a migration to cancel). */
  private aborting = new Map<string, number>();
  /** The migration whose cancellation Nova took, per server id. */
  private cancelled = new Map<string, number>();
  private readonly timing: Timing;
  private readonly polling: Polling;
  private readonly watch: Watch<Migration & { instance_uuid: string }, Server>;
  /** Every compute service, as last listed (servicesNow), and when. */
  private listedServices?: { at: number; read: Promise<Service[]> };

  private readonly config: OpenStackFleet;

  /**
   * Defaults from the schema (withDefaults): each `!` is a field that has one. tuning: shorter
   * bounds and retries, for tests; polling: per-server for the benchmark's baseline.
   */
  constructor(given: OpenStackFleet, origin?: number, tuning: Partial<Timing> & { retry?: Partial<typeof RETRY>; polling?: Polling } = {}) {
    const { retry, polling, ...timing } = tuning;
    const config = withDefaults(given, 'OpenStackFleet');
    this.config = config;
    this.clock = wallClock(origin);
    this.timing = { ...TIMING, ...timing };
    let creds;
    try {
      creds = credentialsFor(config.cloud, config.clouds_file);
    } catch (e) {
      throw userError(`OpenStack credentials: ${messageOf(e)}`, [],
        'name an entry of clouds.yaml in fleet.openstack.cloud, or export OS_AUTH_URL, OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME');
    }
    this.os = new OpenStack(creds, { timeoutMs: config.request_timeout_s! * 1000, requestsPerSecond: config.requests_per_second!, ...(retry ? { retry } : {}) });
    this.polling = polling ?? 'list';
    const byMarker = <T>(marker: (x: T) => string) => ({ microversion: MICROVERSION, marker });
    this.watch = new Watch({
      migrations: (since) => this.os.list<Migration & { instance_uuid: string }>('compute', `/os-migrations?changes-since=${encodeURIComponent(since)}`, 'migrations', byMarker((m) => m.uuid ?? String(m.id))),
      servers: (since) => this.os.list<Server>('compute', `/servers/detail?all_tenants=1&changes-since=${encodeURIComponent(since)}`, 'servers', byMarker((x) => x.id)),
    }, this.clock, this.timing.pollMs, () => this.os.novaDate);
  }

  /** Requests sent so far: in all, per route (method and path template), and the time spent waiting for the budget. */
  requests(): { total: number; routes: Record<string, number>; waitedMs: number; polls: number } {
    return { total: this.os.sent, routes: Object.fromEntries([...this.os.routes].sort((a, b) => b[1] - a[1])), waitedMs: this.os.budget.waitedMs, polls: this.watch.polls };
  }

  private nova<T>(method: string, path: string, body?: unknown) {
    return this.os.request<T>('compute', method, path, { microversion: MICROVERSION, ...(body !== undefined ? { body } : {}) });
  }

  /**
   * A read that Nova must answer before anything can go on: its transient faults are waited out
   * (beyond the client's own retries) for up to outageMs in all, then thrown.
   */
  private async patient<T>(read: () => Promise<T>): Promise<T> {
    const until = this.clock.now() + this.timing.outageMs;
    for (;;) {
      try {
        return await read();
      } catch (e) {
        if (!isTransient(e) || this.clock.now() >= until) throw e;
        await this.clock.sleep(Math.min(5 * this.timing.pollMs, Math.max(0, until - this.clock.now())));
      }
    }
  }

  /** A write that must not happen twice: sent, and on a lost answer judged by taken() (write.ts). */
  private write<T>(what: string, method: string, path: string, body: unknown, taken: () => Promise<boolean>): Promise<Written<T>> {
    return writeOnce(this.clock, this.timing, what, async () => (await this.nova<T>(method, path, body)).body, taken);
  }

  private readonly leaseNova: LeaseNova = {
    aggregates: async () => (await this.nova<{ aggregates: Aggregate[] }>('GET', '/os-aggregates')).body.aggregates,
    write: (what, method, path, body, taken) => this.write(what, method, path, body, taken),
  };

  async inventory(): Promise<Outcome<{ inventory: Inventory }>> {
    try {
      return { ok: true, inventory: await this.patient(() => this.readInventory()) };
    } catch (e) {
      return { ok: false, reason: 'unreachable', detail: messageOf(e) };
    }
  }

  private async readInventory(): Promise<Inventory> {
    {
      const byId = { microversion: MICROVERSION, marker: (x: { id: string }) => x.id };
      const [services, hypervisors, servers, groups, aggregates] = await Promise.all([
        this.nova<{ services: Service[] }>('GET', '/os-services?binary=nova-compute'),
        this.os.list<Hypervisor>('compute', '/os-hypervisors/detail', 'hypervisors', byId),
        this.os.list<Server>('compute', '/servers/detail?all_tenants=1', 'servers', byId),
        this.os.list<{ name: string; policy: string; members: string[] }>('compute', '/os-server-groups?all_projects=True', 'server_groups', { microversion: MICROVERSION }),
        this.leaseNova.aggregates(),
      ]);
      const inv: Inventory = { hosts: [], vms: [], unreachable: [] };
      this.services = new Map(services.body.services.map((s) => [s.host, s]));
      const leases = leasesByHost(aggregates);
      for (const hv of hypervisors) {
        const host = hv.service.host;
        const svc = this.services.get(host);
        if (!svc || svc.state !== 'up') {
          inv.unreachable.push({ host, detail: `nova-compute on ${host} is ${svc?.state ?? 'missing'}` });
          continue;
        }
        const capacity = await this.capacity(hv.hypervisor_hostname);
        const v = hv.hypervisor_version;
        // A source's fence first: it stays through the maintenance; a lease only lasts a run.
        const fence = this.fenceOf(svc) ?? leases.get(host);
        inv.hosts.push({
          name: host, uuid: hv.id, cpuModel: 'host-model', labels: {}, capacity,
          hypervisor: { type: 'QEMU', version: `${Math.floor(v / 1e6)}.${Math.floor(v / 1e3) % 1e3}.${v % 1e3}` },
          ...(fence ? { fence } : {}),
        });
      }
      const groupOf = new Map<string, { name: string; policy: string }>();
      for (const g of groups) for (const m of g.members) groupOf.set(m, g);
      // Nova does not make names unique (across projects least of all): names.ts makes them so.
      const placed = servers.filter((s) => s['OS-EXT-SRV-ATTR:host']);
      const names = uniqueNames(placed.map((s) => ({ name: s.name, id: s.id, host: s['OS-EXT-SRV-ATTR:host']!, s })));
      for (const [{ s }, name] of names) {
        const host = s['OS-EXT-SRV-ATTR:host']!;
        this.ids.set(name, s.id);
        const g = groupOf.get(s.id);
        inv.vms.push({
          name, uuid: s.id, host, state: stateOf(s), storage: 'shared', cpuModel: 'qemu64',
          resources: { vcpu: s.flavor.vcpus, memory_mib: s.flavor.ram, disk_gib: s.flavor.disk },
          ...(g?.policy === 'anti-affinity' ? { antiAffinity: g.name } : {}),
          ...(g?.policy === 'affinity' ? { affinity: g.name } : {}),
        });
      }
      inv.hosts.sort((a, b) => a.name.localeCompare(b.name));
      inv.vms.sort((a, b) => a.name.localeCompare(b.name));
      return inv;
    }
  }

  /** (total - reserved) x allocation ratio, per resource, from the host's resource provider. */
  private async capacity(hypervisor: string): Promise<Resources> {
    const rp = await this.provider(hypervisor);
    const inv = await this.os.request<{ inventories: Record<string, { total: number; reserved: number; allocation_ratio: number }> }>('placement', 'GET', `/resource_providers/${rp}/inventories`, { microversion: '1.26' });
    const eff = (k: string) => {
      const i = inv.body.inventories[k];
      return i ? Math.floor((i.total - i.reserved) * i.allocation_ratio) : 0;
    };
    return { vcpu: eff('VCPU'), memory_mib: eff('MEMORY_MB'), disk_gib: eff('DISK_GB') };
  }

  private async provider(hypervisor: string): Promise<string> {
    let id = this.providers.get(hypervisor);
    if (!id) {
      const r = await this.os.request<{ resource_providers: { uuid: string }[] }>('placement', 'GET', `/resource_providers?name=${encodeURIComponent(hypervisor)}`, { microversion: '1.26' });
      id = r.body.resource_providers[0]?.uuid;
      if (!id) throw new Error(`no resource provider named ${hypervisor} in placement`);
      this.providers.set(hypervisor, id);
    }
    return id;
  }

  private fenceOf(s: Service): Fence | undefined {
    if (s.status !== 'disabled' || !s.disabled_reason?.startsWith(FENCE_PREFIX)) return undefined;
    try {
      return JSON.parse(s.disabled_reason.slice(FENCE_PREFIX.length)) as Fence;
    } catch {
      return undefined;
    }
  }

  /**
   * Nova's own check: the destination's compute service is enabled (Nova refuses a migration to a
   * disabled one even with the host named), as the last inventory read it. The generic checks
   * come from discovery (preflight/).
   */
  async preflight(items: PreflightItem[]): Promise<CheckResult[][]> {
    return items.map(({ destination }) => {
      const svc = this.services.get(destination);
      const ok = svc?.status === 'enabled';
      return [{ check: 'peer', ok, detail: ok ? `nova-compute on ${destination} is enabled` : `nova-compute on ${destination} is ${svc ? `disabled (${svc.disabled_reason ?? 'no reason'})` : 'unknown to Nova'}` }];
    });
  }

  /** The server's id: the one discovery saw (names need not be unique), else looked up by name. */
  private id(vm: Vm): string {
    return vm.uuid !== vm.name ? vm.uuid : this.ids.get(vm.name) ?? vm.uuid;
  }

  /** The server as Nova has it now (the client retries transient faults). */
  private async server(vm: Vm): Promise<Server> {
    return (await this.nova<{ server: Server }>('GET', `/servers/${this.id(vm)}`)).body.server;
  }

  /** The host's nova-compute as Nova has it now. */
  private async service(host: string): Promise<Service | undefined> {
    const r = await this.nova<{ services: Service[] }>('GET', `/os-services?binary=nova-compute&host=${encodeURIComponent(host)}`);
    const svc = r.body.services.find((s) => s.host === host);
    if (svc) this.services.set(host, svc);
    return svc;
  }

  /**
   * Every nova-compute, listed at most once a poll interval however many migrations ask (one
   * listing in flight at a time); a failed listing is not kept.
   */
  private servicesNow(): Promise<Service[]> {
    const l = this.listedServices;
    if (l && this.clock.now() - l.at < this.timing.pollMs) return l.read;
    const read = this.nova<{ services: Service[] }>('GET', '/os-services?binary=nova-compute').then((r) => {
      for (const svc of r.body.services) this.services.set(svc.host, svc);
      return r.body.services;
    });
    const entry = { at: this.clock.now(), read };
    this.listedServices = entry;
    read.catch(() => {
      if (this.listedServices === entry) this.listedServices = undefined;
    });
    return read;
  }

  /** Why the host cannot take a migration now (its nova-compute down, disabled or missing), or undefined when it can. */
  private async unusable(host: string): Promise<string | undefined> {
    const svc = this.polling === 'list' ? (await this.servicesNow()).find((x) => x.host === host) : await this.service(host);
    if (!svc) return `no nova-compute on ${host} is known to Nova`;
    if (svc.state !== 'up' || svc.forced_down) return `nova-compute on ${host} is down`;
    if (svc.status !== 'enabled') return `nova-compute on ${host} is disabled (${svc.disabled_reason ?? 'no reason'})`;
    return undefined;
  }

  /**
   * After a migration failed at failedAt: is its destination's nova-compute dead? 'down' once Nova
   * says so; 'up' once it reported in after the failure; 'unknown' when neither within heartbeatMs.
   */
  private async destinationFate(host: string, failedAt: number): Promise<'up' | 'down' | 'unknown'> {
    const until = this.clock.now() + this.timing.heartbeatMs;
    for (;;) {
      const svc = await this.service(host).catch(() => undefined);
      if (svc && (svc.state === 'down' || svc.forced_down)) return 'down';
      if (svc && when(svc.updated_at) > failedAt) return 'up';
      if (this.clock.now() >= until) return 'unknown';
      await this.clock.sleep(this.timing.pollMs);
    }
  }

  /** The newest migration of this server of the type, whatever its state. */
  private async lastMigration(vm: Vm, type: 'live-migration' | 'migration'): Promise<Migration | undefined> {
    const r = await this.nova<{ migrations: (Migration & { created_at: string })[] }>('GET', `/os-migrations?instance_uuid=${this.id(vm)}&migration_type=${type}`);
    return r.body.migrations.sort((a, b) => b.id - a.id)[0];
  }

  /**
   * What tells this run's new migration of vm from older ones, taken before it is asked for:
   * listing, a record newer than any the poller saw of it and made after now on Nova's clock;
   * per server, a record newer than the newest Nova has of it now (a read).
   */
  private async fresh(vm: Vm, type: 'live-migration' | 'migration'): Promise<Fresh> {
    if (this.polling === 'list') {
      const { since, after } = this.watch.mark(this.id(vm));
      return (m) => m.id > after && !(when(m.created_at) < since);
    }
    const before = (await this.lastMigration(vm, type))?.id ?? 0;
    return (m) => m.id > before;
  }

  /** The newest migration of vm of the type that fresh accepts, as the poller saw it. */
  private watched(vm: Vm, type: 'live-migration' | 'migration', fresh: Fresh): Migration | undefined {
    return this.watch.migrationsOf(this.id(vm)).filter((m) => m.migration_type === type && fresh(m)).sort((a, b) => b.id - a.id)[0];
  }

  /** A failure for Nova not answering reads (after the client's retries). */
  private novaDown(vm: Vm, e: unknown, doing: string): MigrationOutcome {
    return failure('unreachable', `Nova did not answer ${doing} ${vm.name} (${messageOf(e)}); look at where it is before running it again`);
  }

  async liveMigrate(req: LiveRequest): Promise<MigrationOutcome> {
    const id = this.id(req.vm);
    const release = this.polling === 'list' ? this.watch.watch(id) : undefined;
    try {
      return await this.liveMigrateWatched(req);
    } finally {
      release?.();
    }
  }

  /**
   * One poll's look at a migration in flight: listing, after the poller's next poll, what it saw
   * (the server read on its own only when the poller never saw it change and `needServer`);
   * per server, after a pause, the migration and (when it has no record yet) the server.
   */
  private async look(vm: Vm, type: 'live-migration' | 'migration', fresh: Fresh, needServer: boolean): Promise<{ m?: Migration; s?: Server }> {
    if (this.polling === 'list' && this.watch.watching(this.id(vm))) {
      await this.watch.next();
      const m = this.watched(vm, type, fresh);
      const s = this.watch.serverOf(this.id(vm)) ?? (needServer ? await this.server(vm) : undefined);
      return { ...(m ? { m } : {}), ...(s ? { s } : {}) };
    }
    await this.clock.sleep(this.timing.pollMs);
    const last = await this.lastMigration(vm, type);
    const m = last && fresh(last) ? last : undefined;
    const s = !m ? await this.server(vm) : undefined;
    return { ...(m ? { m } : {}), ...(s ? { s } : {}) };
  }

  private async liveMigrateWatched(req: LiveRequest): Promise<MigrationOutcome> {
    const { vm, destination } = req;
    const id = this.id(vm);
    this.aborting.delete(id);
    this.cancelled.delete(id);
    let fresh: Fresh;
    try {
      // A destination whose nova-compute is down or disabled is not tried: Nova would fail the migration.
      const bad = await this.patient(() => this.unusable(destination));
      if (bad) return failure('unreachable', `${bad}: not migrated; ${vm.name} stays on ${vm.host}`, destination);
      fresh = await this.patient(() => this.fresh(vm, 'live-migration'));
    } catch (e) {
      return this.novaDown(vm, e, 'before the live migration of');
    }
    // Asked to abort before it started (the deadline passed during the reads): not sent at all.
    if (this.aborting.has(id)) return failure('aborted', `asked to abort before os-migrateLive was sent: not sent; ${vm.name} stays on ${vm.host}`);
    const sent = await this.write('os-migrateLive', 'POST', `/servers/${id}/action`, { 'os-migrateLive': { host: destination, block_migration: 'auto' } }, async () => {
      const [m, s] = [await this.lastMigration(vm, 'live-migration'), await this.server(vm)];
      return (m !== undefined && fresh(m)) || s['OS-EXT-STS:task_state'] === 'migrating' || s.status === 'MIGRATING';
    });
    if (!sent.ok) {
      const refused = sent.error instanceof HttpError && sent.error.status === 409;
      return failure(refused ? 'refused' : sent.unknown ? 'unreachable' : 'error', sent.detail, sent.unknown ? undefined : destination);
    }
    const started = this.clock.now();
    let lastRead = started;
    let asked = false;
    let forced: number | undefined;
    // Time Nova's API did not answer does not count against Nova making its record (an API restart is not a dead request).
    let silentMs = 0;
    let failingSince: number | undefined;
    const waited = () => this.clock.now() - started - silentMs;
    for (;;) {
      let m: Migration | undefined;
      let s: Server | undefined;
      try {
        // Without a record for a while, the server itself says whether the request died before one was made.
        ({ m, s } = await this.look(vm, 'live-migration', fresh, waited() > 30_000));
        // A read after reads that failed: from the last answer to this one, Nova was silent.
        if (failingSince !== undefined) silentMs += this.clock.now() - failingSince;
        failingSince = undefined;
        lastRead = this.clock.now();
      } catch (e) {
        failingSince ??= lastRead;
        if (this.clock.now() - lastRead > this.timing.outageMs) return this.novaDown(vm, e, `for ${Math.round(this.timing.outageMs / 1000)} s during the live migration of`);
        continue;
      }
      const abortedAt = this.aborting.get(id);
      if (m) {
        if (['completed', 'error', 'failed', 'cancelled'].includes(m.status)) return this.settleLive(vm, destination, m, forced, s);
        // An abort asked for before Nova had this migration to cancel: cancel it now.
        if (abortedAt !== undefined && this.cancelled.get(id) !== m.id) await this.cancel(vm, m);
        if (abortedAt !== undefined && this.clock.now() - abortedAt > this.timing.abortGraceMs) {
          return failure('timeout', `the live migration was asked to abort ${Math.round((this.clock.now() - abortedAt) / 1000)} s ago and is still ${m.status}: look at ${vm.name} (from ${vm.host} to ${destination}); Nova may still finish or roll it back`);
        }
        req.onProgress({ vm: vm.name, phase: 'memory', sentBytes: m.memory_processed_bytes ?? 0, remainingBytes: m.memory_remaining_bytes ?? 0, rateBps: 0 });
        const after = this.config.force_complete_after_s;
        if (after !== undefined && !asked && m.status === 'running' && this.clock.now() - started > after * 1000) {
          asked = true;
          forced = await this.forceComplete(vm, m, Math.round((this.clock.now() - started) / 1000));
        }
      } else {
        // No record yet: the request may have failed before one was made.
        if (s && !s['OS-EXT-STS:task_state'] && waited() > 30_000) return this.settleLive(vm, destination, undefined);
        if (s && waited() > this.timing.noRecordMs) {
          return failure('error', `Nova made no live-migration record in ${Math.round(this.timing.noRecordMs / 1000)} s; ${at(vm, s)}: a task left on it may need a person`, destination);
        }
      }
    }
  }

  /** Ask Nova to force the migration to finish; returns `at` when it was taken (refused: it runs on to its deadline). */
  private async forceComplete(vm: Vm, m: Migration, atS: number): Promise<number | undefined> {
    const actions = async () => (await this.nova<{ instanceActions: { action: string }[] }>('GET', `/servers/${this.id(vm)}/os-instance-actions`)).body.instanceActions
      .filter((a) => a.action === 'live_migration_force_complete').length;
    const had = await actions().catch(() => undefined);
    if (had === undefined) return undefined;
    const r = await this.write('force_complete', 'POST', `/servers/${this.id(vm)}/migrations/${m.id}/action`, { force_complete: null }, async () => (await actions()) > had);
    return r.ok ? atS : undefined;
  }

  /**
   * forcedAfterS: when force-complete was asked for, seconds into the migration. seen: the server
   * as the poller listed it after the migration's record; it is read again unless it shows the
   * move done.
   */
  private async settleLive(vm: Vm, destination: string, m: Migration | undefined, forcedAfterS?: number, seen?: Server): Promise<MigrationOutcome> {
    let s: Server;
    try {
      const done = seen && m?.status === 'completed' && seen['OS-EXT-SRV-ATTR:host'] === destination && !seen['OS-EXT-STS:task_state'];
      s = done ? seen : await this.patient(() => this.server(vm));
    } catch (e) {
      return this.novaDown(vm, e, 'after the live migration of');
    }
    const host = s['OS-EXT-SRV-ATTR:host'];
    if (host === destination && m?.status === 'completed') {
      return {
        ok: true, bytes: (m.memory_processed_bytes ?? 0) + (m.disk_processed_bytes ?? 0), downtimeMs: 0,
        ...(forcedAfterS !== undefined ? { note: `force-completed after ${forcedAfterS} s` } : {}),
      };
    }
    const why = m ? await this.whyFailed(vm) : 'no migration record was made';
    if (m?.status === 'cancelled') return failure('aborted', `live migration cancelled; ${at(vm, s)}`);
    // A failed migration whose destination's nova-compute died is a failed destination: the VM goes elsewhere.
    if (m && (m.status === 'error' || m.status === 'failed')) {
      const failedAt = Number.isNaN(when(m.updated_at)) ? Date.now() : when(m.updated_at);
      if (await this.destinationFate(destination, failedAt) === 'down') {
        return failure('unreachable', `live migration ${m.status} (${why}) and nova-compute on ${destination} is down; ${at(vm, s)}`, destination);
      }
    }
    return failure('error', `live migration ${m?.status ?? 'not started'}: ${why}; ${at(vm, s)}`, destination);
  }

  /** The failed event's details in the server's newest instance action (2.84). */
  private async whyFailed(vm: Vm): Promise<string> {
    try {
      const actions = (await this.nova<{ instanceActions: { request_id: string }[] }>('GET', `/servers/${this.id(vm)}/os-instance-actions`)).body.instanceActions;
      const a = actions[0];
      if (!a) return 'no instance action recorded';
      const detail = (await this.nova<{ instanceAction: { events?: { event: string; result: string; details?: string }[] } }>('GET', `/servers/${this.id(vm)}/os-instance-actions/${a.request_id}`)).body.instanceAction;
      const bad = detail.events?.find((e) => e.result === 'Error');
      return bad ? `${bad.event}: ${bad.details ?? 'failed'}` : 'no failed event recorded';
    } catch (e) {
      return messageOf(e);
    }
  }

  /**
   * Abort the live migration of vm: cancelled now if Nova has it in progress; asked for in any
   * case, so a liveMigrate still before its POST does not send it, and one whose record has not
   * appeared yet cancels it when it does.
   */
  async abort(vm: Vm): Promise<Outcome<object>> {
    const id = this.id(vm);
    if (!this.aborting.has(id)) this.aborting.set(id, this.clock.now());
    try {
      const r = await this.patient(() => this.nova<{ migrations: Migration[] }>('GET', `/servers/${id}/migrations`));
      const m = r.body.migrations[0];
      if (!m) return failure('not-found', `no live migration of ${vm.name} in progress`);
      return await this.cancel(vm, m);
    } catch (e) {
      return failure(isTransient(e) ? 'unreachable' : 'error', messageOf(e));
    }
  }

  /** DELETE the migration, judged from its record when the answer is lost. */
  private async cancel(vm: Vm, m: Migration): Promise<Outcome<object>> {
    const id = this.id(vm);
    const over = async () => {
      const now = (await this.nova<{ migrations: Migration[] }>('GET', `/servers/${id}/migrations`)).body.migrations.find((x) => x.id === m.id);
      return !now || ['cancelling', 'cancelled', 'error', 'failed', 'completed'].includes(now.status);
    };
    const gone = await this.write('aborting the live migration', 'DELETE', `/servers/${id}/migrations/${m.id}`, undefined, over);
    // A 409 may be a second abort of the same migration (the deadline's and the run's): its record says.
    const ok = gone.ok || (gone.error instanceof HttpError && gone.error.status === 409 && await over().catch(() => false));
    if (ok) this.cancelled.set(id, m.id);
    return ok ? { ok: true } : failure(!gone.ok && gone.error instanceof HttpError && gone.error.status === 409 ? 'refused' : 'error', gone.ok ? 'aborted' : gone.detail);
  }

  /**
   * Check the destination's nova-compute is up and enabled (a guest is never shut down for a move
   * that cannot finish), migrate to the host (2.56+), wait for VERIFY_RESIZE, confirm, and check
   * where it runs; all within req.deadlineMs. Nova keeps a stopped server stopped (its
   * finish_migration powers on only what was running), so SHUTOFF arrives SHUTOFF.
   */
  async coldMigrate(req: ColdRequest): Promise<MigrationOutcome> {
    const release = this.polling === 'list' ? this.watch.watch(this.id(req.vm)) : undefined;
    try {
      return await this.coldMigrateWatched(req);
    } finally {
      release?.();
    }
  }

  /** The server after a pause: listing, as the poller last saw it change (read on its own when it never did, or `after` ms passed); per server, read. */
  private async serverAfterPause(vm: Vm, pauseMs: number, readAfterMs = 30_000, since = this.clock.now()): Promise<Server> {
    if (this.polling === 'list' && this.watch.watching(this.id(vm))) {
      await this.watch.next();
      const s = this.watch.serverOf(this.id(vm));
      if (s || this.clock.now() - since < readAfterMs) return s ?? Promise.reject(new Error('not seen yet'));
      return this.server(vm);
    }
    await this.clock.sleep(pauseMs);
    return this.server(vm);
  }

  private async coldMigrateWatched(req: ColdRequest): Promise<MigrationOutcome> {
    const { vm, destination } = req;
    const id = this.id(vm);
    const t0 = this.clock.now();
    const deadline = t0 + req.deadlineMs;
    let fresh: Fresh;
    try {
      const bad = await this.patient(() => this.unusable(destination));
      if (bad) return failure('unreachable', `${bad}: not migrated, and ${vm.name} was not shut down; it stays on ${vm.host}`, destination);
      fresh = await this.patient(() => this.fresh(vm, 'migration'));
    } catch (e) {
      return this.novaDown(vm, e, 'before the cold migration of');
    }
    req.onProgress({ vm: vm.name, phase: 'copy', sentBytes: 0, remainingBytes: 0, rateBps: 0 });
    const sent = await this.write('migrate', 'POST', `/servers/${id}/action`, { migrate: { host: destination } }, async () => {
      const [m, s] = [await this.lastMigration(vm, 'migration'), await this.server(vm)];
      return (m !== undefined && fresh(m)) || ['RESIZE', 'VERIFY_RESIZE'].includes(s.status) || (s['OS-EXT-STS:task_state'] ?? '').startsWith('resize');
    });
    if (!sent.ok) {
      const refused = sent.error instanceof HttpError && sent.error.status === 409;
      return failure(refused ? 'refused' : sent.unknown ? 'unreachable' : 'error', sent.detail, sent.unknown ? undefined : destination);
    }
    let lastCheck = this.clock.now();
    for (;;) {
      if (this.clock.now() >= deadline) return this.coldStuck(vm, destination, req.deadlineMs);
      const s = await this.serverAfterPause(vm, Math.min(this.timing.pollMs, Math.max(0, deadline - this.clock.now())), 30_000, t0).catch(() => undefined);
      if (!s) continue;
      if (s.status === 'VERIFY_RESIZE') break;
      if (s.status === 'ERROR' || (!s['OS-EXT-STS:task_state'] && ['ACTIVE', 'SHUTOFF'].includes(s.status) && this.clock.now() - t0 > 5000)) {
        const m = await this.lastMigration(vm, 'migration').catch(() => undefined);
        if (s['OS-EXT-SRV-ATTR:host'] === destination && m?.status !== 'error') break;
        const why = await this.whyFailed(vm);
        if (m && fresh(m) && m.status === 'error' && await this.destinationFate(destination, when(m.updated_at)) === 'down') {
          return failure('unreachable', `cold migration error (${why}) and nova-compute on ${destination} is down; ${at(vm, s)}`, destination);
        }
        return failure('error', `cold migration ${m?.status ?? 'failed'}: ${why}; ${at(vm, s)}`, destination);
      }
      // Still on the source, waiting for the destination to prepare: a dead destination never will.
      if (s['OS-EXT-SRV-ATTR:host'] !== destination && this.clock.now() - lastCheck > 5 * this.timing.pollMs) {
        lastCheck = this.clock.now();
        const svc = await this.service(destination).catch(() => undefined);
        if (svc && (svc.state === 'down' || svc.forced_down)) return this.coldStuck(vm, destination, req.deadlineMs, s);
      }
    }
    req.onProgress({ vm: vm.name, phase: 'cleanup', sentBytes: 0, remainingBytes: 0, rateBps: 0 });
    const confirmed = await this.confirm(vm, Math.max(this.timing.confirmMs, deadline - this.clock.now()));
    if (confirmed.left) return failure('timeout', confirmed.left, destination);
    // Listing, the confirm's wait ended on the poller's fresh look at the server.
    const after = this.polling === 'list' && confirmed.seen ? confirmed.seen : await this.patient(() => this.server(vm)).catch(() => undefined);
    if (!after) return failure('unreachable', `Nova did not answer after confirming ${vm.name}'s cold migration: look at it on ${destination}`);
    if (after['OS-EXT-SRV-ATTR:host'] !== destination) return failure('error', `after the cold migration ${at(vm, after)}`, destination);
    return { ok: true, bytes: 0, downtimeMs: this.clock.now() - t0 };
  }

  /** A cold migration that did not get through in time, or whose destination died: where the server is, and what a person may have to do. */
  private async coldStuck(vm: Vm, destination: string, deadlineMs: number, seen?: Server): Promise<MigrationOutcome> {
    const s = seen ?? await this.server(vm).catch(() => undefined);
    const svc = await this.service(destination).catch(() => undefined);
    const down = svc !== undefined && (svc.state === 'down' || svc.forced_down === true);
    const where = s ? at(vm, s) : `${vm.name} could not be read from Nova`;
    const stuck = s && s['OS-EXT-STS:task_state'] === 'resize_prep' && s['OS-EXT-SRV-ATTR:host'] !== destination
      ? `; its guest was not shut down, but Nova queued the move for ${destination}: if that nova-compute comes back it may carry the move out (then confirm or revert the resize), otherwise reset the server's state (openstack server set --state active) before moving it again`
      : s?.['OS-EXT-STS:task_state'] ? '; a person may need to look at its task' : '';
    if (down) return failure('unreachable', `nova-compute on ${destination} is down, so the cold migration cannot finish; ${where}${stuck}`, destination);
    return failure('timeout', `the cold migration did not finish within its deadline of ${Math.round(deadlineMs / 1000)} s; ${where}${stuck}`, destination);
  }

  /** Confirm the resize and wait until it settles, at most withinMs; left: what is left and where, when not done; seen: the server settled. */
  private async confirm(vm: Vm, withinMs: number): Promise<{ left?: string; seen?: Server }> {
    const until = this.clock.now() + withinMs;
    const sent = await this.write('confirmResize', 'POST', `/servers/${this.id(vm)}/action`, { confirmResize: null }, async () => {
      const s = await this.server(vm);
      if (s.status !== 'VERIFY_RESIZE') return true;
      const m = await this.lastMigration(vm, 'migration');
      return m !== undefined && ['confirming', 'confirmed'].includes(m.status);
    });
    // 409: no longer VERIFY_RESIZE (confirmed meanwhile); what the server shows below decides.
    if (!sent.ok && !(sent.error instanceof HttpError && sent.error.status === 409)) return { left: `${sent.detail}; ${vm.name} is left to confirm (openstack server resize confirm)` };
    const listing = this.polling === 'list' && this.watch.watching(this.id(vm));
    const t0 = this.clock.now();
    let s: Server | undefined;
    for (;;) {
      s = await (listing ? this.serverAfterPause(vm, this.timing.pollMs, 30_000, t0) : this.server(vm)).catch(() => s);
      if (s && s.status !== 'VERIFY_RESIZE' && !s['OS-EXT-STS:task_state']) return { seen: s };
      if (this.clock.now() >= until) return { left: `the resize was not confirmed within ${Math.round(withinMs / 1000)} s; ${s ? at(vm, s) : `${vm.name} could not be read`}: confirm it (openstack server resize confirm)` };
      if (!listing) await this.clock.sleep(this.timing.pollMs);
    }
  }

  /**
   * os-stop or os-start, then wait until Nova shows the server SHUTOFF or ACTIVE. Nova shuts a
   * guest down itself: it asks, and powers it off after its own shutdown_timeout (nova.conf), so
   * force_off cannot keep a guest that ignores the request running here.
   */
  async power(vm: Vm, to: 'off' | 'on', opts: { timeoutS: number; forceOff: boolean }): Promise<Outcome<object>> {
    const want = to === 'off' ? 'SHUTOFF' : 'ACTIVE';
    const action = to === 'off' ? 'os-stop' : 'os-start';
    try {
      const s = await this.patient(() => this.server(vm));
      if (s.status === want && !s['OS-EXT-STS:task_state']) return { ok: true };
      if (s.status !== (to === 'off' ? 'ACTIVE' : 'SHUTOFF')) return failure('refused', `${vm.name} is ${s.status}${s['OS-EXT-STS:task_state'] ? ` (${s['OS-EXT-STS:task_state']})` : ''}: only an ACTIVE server is stopped, a SHUTOFF one started`, vm.host);
      const sent = await this.write(action, 'POST', `/servers/${this.id(vm)}/action`, { [action]: null }, async () => {
        const now = await this.server(vm);
        return now.status === want || (now['OS-EXT-STS:task_state'] ?? '') === (to === 'off' ? 'powering-off' : 'powering-on');
      });
      if (!sent.ok) return failure(sent.unknown ? 'unreachable' : 'error', sent.detail, vm.host);
      const until = this.clock.now() + opts.timeoutS * 1000 + 60_000;
      for (;;) {
        await this.clock.sleep(this.timing.pollMs);
        const now = await this.server(vm).catch(() => undefined);
        if (now && now.status === want && !now['OS-EXT-STS:task_state']) return { ok: true };
        if (now?.status === 'ERROR') return failure('error', `${action} left ${vm.name} in ERROR: ${await this.whyFailed(vm)}`, vm.host);
        if (this.clock.now() >= until) return failure('timeout', `${vm.name} is not ${want} ${opts.timeoutS + 60} s after ${action}${now ? `: ${at(vm, now)}` : ''}`, vm.host);
      }
    } catch (e) {
      return this.novaDown(vm, e, `during ${action} of`);
    }
  }

  async locate(vm: Vm, hosts: string[]): Promise<Location> {
    try {
      const s = await this.patient(() => this.server(vm));
      const host = s['OS-EXT-SRV-ATTR:host'];
      return { vm: vm.name, found: host && hosts.includes(host) ? [{ host, state: stateOf(s) }] : [], unreachable: [] };
    } catch (e) {
      if (e instanceof HttpError && e.status === 404) return { vm: vm.name, found: [], unreachable: [] };
      return { vm: vm.name, found: [], unreachable: hosts };
    }
  }

  /** Nova keeps one record of the server: wait (at most waitMs) for its task to end, confirm a resize left to verify, and say where it is. */
  async recover(req: RecoverRequest): Promise<Recovery> {
    const until = this.clock.now() + req.waitMs;
    for (;;) {
      const s = await this.server(req.vm).catch(() => undefined);
      if (!s) return { host: null, action: `${req.vm.name} could not be read from Nova` };
      if (s.status === 'VERIFY_RESIZE' && s['OS-EXT-SRV-ATTR:host'] === req.destination) {
        const { left } = await this.confirm(req.vm, this.timing.confirmMs);
        return left ? { host: req.destination, action: left } : { host: req.destination, action: `completed: the cold migration was confirmed on ${req.destination}` };
      }
      if (!s['OS-EXT-STS:task_state'] || this.clock.now() >= until) {
        const host = s['OS-EXT-SRV-ATTR:host'];
        if (s['OS-EXT-STS:task_state']) return { host, action: `still in progress after ${Math.round(req.waitMs / 1000)} s: ${at(req.vm, s)}; look at it before moving it again` };
        return { host, action: host === req.destination ? `the migration had finished: it runs on ${host}` : `rolled back by Nova: it is ${s.status} on ${host}` };
      }
      await this.clock.sleep(Math.min(this.timing.pollMs, Math.max(0, until - this.clock.now())));
    }
  }

  /**
   * A source's fence: its compute service disabled, with the fence as the reason. A destination's
   * lease: a host aggregate (lease.ts), which leaves the host open to migrations. null lifts both.
   */
  async fence(host: string, fence: Fence | null, force = false): Promise<Outcome<object> & { holder?: Fence }> {
    try {
      if (fence?.role === 'destination') {
        const got = await takeLease(this.leaseNova, host, fence, force);
        return got.ok ? { ok: true } : { ...failure(got.reason, got.detail, host), ...(got.holder ? { holder: got.holder } : {}) };
      }
      const svc = await this.service(host);
      if (!svc) return failure('not-found', `no nova-compute on ${host}`, host);
      if (!fence) {
        const lifted = await liftLease(this.leaseNova, host);
        if (!lifted.ok) return failure(lifted.reason, lifted.detail, host);
      }
      const held = this.fenceOf(svc) ?? (fence ? leasesByHost(await this.leaseNova.aggregates()).get(host) : undefined);
      if (held && fence && held.plan !== fence.plan && !force) return { ok: false, reason: 'refused', detail: `${host} is held by another plan`, holder: held };
      if (!fence && !this.fenceOf(svc)) return { ok: true };
      const body = fence ? { status: 'disabled', disabled_reason: `${FENCE_PREFIX}${JSON.stringify(fence)}` } : { status: 'enabled' };
      const done = await this.write<{ service: Service }>(`marking ${host}`, 'PUT', `/os-services/${svc.id}`, body, async () => {
        const now = await this.service(host);
        return fence ? now?.status === 'disabled' && now.disabled_reason === body.disabled_reason : now?.status === 'enabled';
      });
      if (!done.ok) return failure(done.unknown || isTransient(done.error) ? 'unreachable' : 'error', done.detail, host);
      if (done.answer) this.services.set(host, done.answer.service);
      else await this.service(host).catch(() => undefined);
      return { ok: true };
    } catch (e) {
      return failure('unreachable', messageOf(e), host);
    }
  }

  async close(): Promise<void> {}
}
