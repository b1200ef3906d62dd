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
 * allocation ratio, so plans for OpenStack keep overcommit 1 and reserve 0. A host's fence is
 * its compute service disabled with a reason naming the plan. Outcomes are decided from where
 * Nova says the server is, never from an error text.
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
import { credentialsFor, HttpError, OpenStack } from './client.ts';

export const MICROVERSION = '2.84';
const POLL_MS = 1000;
/** How often a read of a server is tried before its failure counts. */
const READ_ATTEMPTS = 3;
/** Disabled reasons evacuator writes start with this; the rest is the fence as JSON. */
const FENCE_PREFIX = 'evacuator:';


interface Service { id: string; host: string; state: 'up' | 'down'; status: 'enabled' | 'disabled'; disabled_reason: string | null }
interface Server {
  id: string; name: string; status: string; 'OS-EXT-SRV-ATTR:host': string | null; 'OS-EXT-STS:task_state': string | null;
  flavor: { vcpus: number; ram: number; disk: number };
}
interface Migration { id: number; status: string; dest_compute: string; source_compute: string; memory_processed_bytes?: number; memory_remaining_bytes?: number; memory_total_bytes?: number; disk_processed_bytes?: number }
interface Hypervisor { id: string; hypervisor_hostname: string; hypervisor_version: number; hypervisor_type: string; service: { host: string } }

const STATES: Record<string, VmState> = { ACTIVE: 'running', PAUSED: 'paused', SHUTOFF: 'shutoff', SUSPENDED: 'paused', ERROR: 'crashed' };

export class OpenStackDriver implements Driver {
  readonly name = 'openstack';
  readonly clock: Clock;
  private readonly os: OpenStack;
  private ids = new Map<string, string>();
  private services = new Map<string, Service>();
  private providers = new Map<string, string>();

  private readonly config: OpenStackFleet;

  /** Defaults from the schema (withDefaults): each `!` is a field that has one. */
  constructor(given: OpenStackFleet, origin?: number) {
    const config = withDefaults(given, 'OpenStackFleet');
    this.config = config;
    this.clock = wallClock(origin);
    let creds;
    try {
      creds = credentialsFor(config.cloud, config.clouds_file);
    } catch (e) {
      throw userError(`OpenStack credentials: ${messageOf(e)}`, [],
        'name an entry of clouds.yaml in fleet.openstack.cloud, or export OS_AUTH_URL, OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME');
    }
    this.os = new OpenStack(creds, { timeoutMs: config.request_timeout_s! * 1000 });
  }

  private nova<T>(method: string, path: string, body?: unknown) {
    return this.os.request<T>('compute', method, path, { microversion: MICROVERSION, ...(body !== undefined ? { body } : {}) });
  }

  async inventory(): Promise<Outcome<{ inventory: Inventory }>> {
    try {
      const byId = { microversion: MICROVERSION, marker: (x: { id: string }) => x.id };
      const [services, hypervisors, servers, groups] = await Promise.all([
        this.nova<{ services: Service[] }>('GET', '/os-services?binary=nova-compute'),
        this.os.list<Hypervisor>('compute', '/os-hypervisors/detail', 'hypervisors', byId),
        this.os.list<Server>('compute', '/servers/detail?all_tenants=1', 'servers', byId),
        this.os.list<{ name: string; policy: string; members: string[] }>('compute', '/os-server-groups?all_projects=True', 'server_groups', { microversion: MICROVERSION }),
      ]);
      const inv: Inventory = { hosts: [], vms: [], unreachable: [] };
      this.services = new Map(services.body.services.map((s) => [s.host, s]));
      for (const hv of hypervisors) {
        const host = hv.service.host;
        const svc = this.services.get(host);
        if (!svc || svc.state !== 'up') {
          inv.unreachable.push({ host, detail: `nova-compute on ${host} is ${svc?.state ?? 'missing'}` });
          continue;
        }
        const capacity = await this.capacity(hv.hypervisor_hostname);
        const v = hv.hypervisor_version;
        const fence = this.fenceOf(svc);
        inv.hosts.push({
          name: host, uuid: hv.id, cpuModel: 'host-model', labels: {}, capacity,
          hypervisor: { type: 'QEMU', version: `${Math.floor(v / 1e6)}.${Math.floor(v / 1e3) % 1e3}.${v % 1e3}` },
          ...(fence ? { fence } : {}),
        });
      }
      const groupOf = new Map<string, { name: string; policy: string }>();
      for (const g of groups) for (const m of g.members) groupOf.set(m, g);
      // Nova does not make names unique (across projects least of all): a name two servers share
      // gets the server's id prefix, so that every VM evacuator plans, moves and reports is one server.
      const named = new Map<string, number>();
      for (const s of servers) named.set(s.name, (named.get(s.name) ?? 0) + 1);
      for (const s of servers) {
        const host = s['OS-EXT-SRV-ATTR:host'];
        if (!host) continue;
        const name = named.get(s.name)! > 1 ? `${s.name}@${s.id.slice(0, 8)}` : s.name;
        this.ids.set(name, s.id);
        const g = groupOf.get(s.id);
        inv.vms.push({
          name, uuid: s.id, host, state: STATES[s.status] ?? 'paused', storage: 'shared', cpuModel: 'qemu64',
          resources: { vcpu: s.flavor.vcpus, memory_mib: s.flavor.ram, disk_gib: s.flavor.disk },
          ...(g?.policy === 'anti-affinity' ? { antiAffinity: g.name } : {}),
          ...(g?.policy === 'affinity' ? { affinity: g.name } : {}),
        });
      }
      inv.hosts.sort((a, b) => a.name.localeCompare(b.name));
      inv.vms.sort((a, b) => a.name.localeCompare(b.name));
      return { ok: true, inventory: inv };
    } catch (e) {
      return { ok: false, reason: 'unreachable', detail: messageOf(e) };
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

  /** The server as Nova has it now; a read that fails is tried again (one failed HTTP call is not an outcome). */
  private async server(vm: Vm): Promise<Server> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.nova<{ server: Server }>('GET', `/servers/${this.id(vm)}`)).body.server;
      } catch (e) {
        if (attempt >= READ_ATTEMPTS || (e instanceof HttpError && e.status < 500)) throw e;
        await this.clock.sleep(POLL_MS * attempt);
      }
    }
  }

  /** The newest live migration of this server, whatever its state. */
  private async lastMigration(vm: Vm, type: 'live-migration' | 'migration'): Promise<Migration | undefined> {
    const r = await this.nova<{ migrations: (Migration & { created_at: string })[] }>('GET', `/os-migrations?instance_uuid=${this.id(vm)}&migration_type=${type}`);
    return r.body.migrations.sort((a, b) => b.id - a.id)[0];
  }

  async liveMigrate(req: LiveRequest): Promise<MigrationOutcome> {
    const { vm, destination } = req;
    const id = this.id(vm);
    const before = (await this.lastMigration(vm, 'live-migration').catch(() => undefined))?.id ?? 0;
    try {
      await this.nova('POST', `/servers/${id}/action`, { 'os-migrateLive': { host: destination, block_migration: 'auto' } });
    } catch (e) {
      return failure(e instanceof HttpError && e.status === 409 ? 'refused' : 'error', messageOf(e), destination);
    }
    const started = this.clock.now();
    let asked = false;
    let forced: number | undefined;
    for (;;) {
      await this.clock.sleep(POLL_MS);
      const m = await this.lastMigration(vm, 'live-migration').catch(() => undefined);
      if (m && m.id > before) {
        if (['completed', 'error', 'failed', 'cancelled'].includes(m.status)) return this.settleLive(vm, destination, m, forced);
        req.onProgress({ vm: vm.name, phase: 'memory', sentBytes: m.memory_processed_bytes ?? 0, remainingBytes: m.memory_remaining_bytes ?? 0, rateBps: 0 });
        const after = this.config.force_complete_after_s;
        if (after !== undefined && !asked && m.status === 'running' && this.clock.now() - started > after * 1000) {
          asked = true;
          const at = Math.round((this.clock.now() - started) / 1000);
          // Refused (the migration just ended, or a driver that cannot): it runs on to its deadline.
          if (await this.nova('POST', `/servers/${id}/migrations/${m.id}/action`, { force_complete: null }).then(() => true, () => false)) forced = at;
        }
      } else {
        // No record yet: the request may have failed before one was made.
        const s = await this.server(vm).catch(() => undefined);
        if (s && !s['OS-EXT-STS:task_state'] && this.clock.now() - started > 30_000) return this.settleLive(vm, destination, undefined);
      }
    }
  }

  /** forcedAfterS: when force-complete was asked for, seconds into the migration. */
  private async settleLive(vm: Vm, destination: string, m: Migration | undefined, forcedAfterS?: number): Promise<MigrationOutcome> {
    const s = await this.server(vm);
    const host = s['OS-EXT-SRV-ATTR:host'];
    if (host === destination && m?.status === 'completed') {
      return {
        ok: true, bytes: (m.memory_processed_bytes ?? 0) + (m.disk_processed_bytes ?? 0), downtimeMs: 0,
        ...(forcedAfterS !== undefined ? { note: `force-completed after ${forcedAfterS} s` } : {}),
      };
    }
    const why = m ? await this.whyFailed(vm) : 'no migration record was made';
    if (m?.status === 'cancelled') return { ...failure('aborted', `live migration cancelled; ${vm.name} is ${s.status} on ${host}`), bytes: 0 };
    return failure('error', `live migration ${m?.status ?? 'not started'}: ${why}; ${vm.name} is ${s.status} on ${host}`, destination);
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


  async abort(vm: Vm): Promise<Outcome<object>> {
    try {
      const r = await this.nova<{ migrations: Migration[] }>('GET', `/servers/${this.id(vm)}/migrations`);
      const m = r.body.migrations[0];
      if (!m) return failure('not-found', `no live migration of ${vm.name} in progress`);
      await this.nova('DELETE', `/servers/${this.id(vm)}/migrations/${m.id}`);
      return { ok: true };
    } catch (e) {
      return failure('error', messageOf(e));
    }
  }

  /** migrate to the host (2.56+), wait for VERIFY_RESIZE, confirm, and check where it runs. */
  async coldMigrate(req: ColdRequest): Promise<MigrationOutcome> {
    const { vm, destination } = req;
    const id = this.id(vm);
    const t0 = this.clock.now();
    req.onProgress({ vm: vm.name, phase: 'copy', sentBytes: 0, remainingBytes: 0, rateBps: 0 });
    try {
      await this.nova('POST', `/servers/${id}/action`, { migrate: { host: destination } });
    } catch (e) {
      return failure(e instanceof HttpError && e.status === 409 ? 'refused' : 'error', messageOf(e), destination);
    }
    for (;;) {
      await this.clock.sleep(POLL_MS);
      const s = await this.server(vm);
      if (s.status === 'VERIFY_RESIZE') break;
      if (s.status === 'ERROR' || (!s['OS-EXT-STS:task_state'] && ['ACTIVE', 'SHUTOFF'].includes(s.status) && this.clock.now() - t0 > 5000)) {
        const m = await this.lastMigration(vm, 'migration').catch(() => undefined);
        if (s['OS-EXT-SRV-ATTR:host'] === destination && m?.status !== 'error') break;
        return failure('error', `cold migration ${m?.status ?? 'failed'}: ${await this.whyFailed(vm)}; ${vm.name} is ${s.status} on ${s['OS-EXT-SRV-ATTR:host']}`, destination);
      }
    }
    req.onProgress({ vm: vm.name, phase: 'cleanup', sentBytes: 0, remainingBytes: 0, rateBps: 0 });
    const s = await this.server(vm);
    if (s.status === 'VERIFY_RESIZE') await this.confirm(vm);
    const after = await this.server(vm);
    if (after['OS-EXT-SRV-ATTR:host'] !== destination) return failure('error', `after the cold migration ${vm.name} is on ${after['OS-EXT-SRV-ATTR:host']}`, destination);
    return { ok: true, bytes: 0, downtimeMs: this.clock.now() - t0 };
  }

  private async confirm(vm: Vm): Promise<void> {
    await this.nova('POST', `/servers/${this.id(vm)}/action`, { confirmResize: null });
    for (let i = 0; i < 60; i++) {
      const s = await this.server(vm);
      if (s.status !== 'VERIFY_RESIZE' && !s['OS-EXT-STS:task_state']) return;
      await this.clock.sleep(POLL_MS);
    }
  }

  async locate(vm: Vm, hosts: string[]): Promise<Location> {
    try {
      const s = await this.server(vm);
      const host = s['OS-EXT-SRV-ATTR:host'];
      return { vm: vm.name, found: host && hosts.includes(host) ? [{ host, state: STATES[s.status] ?? 'paused' }] : [], unreachable: [] };
    } catch (e) {
      if (e instanceof HttpError && e.status === 404) return { vm: vm.name, found: [], unreachable: [] };
      return { vm: vm.name, found: [], unreachable: hosts };
    }
  }

  /** Nova keeps one record of the server: wait for its task to end, confirm a resize left to verify, and say where it is. */
  async recover(req: RecoverRequest): Promise<Recovery> {
    const until = this.clock.now() + req.waitMs;
    for (;;) {
      const s = await this.server(req.vm).catch(() => undefined);
      if (!s) return { host: null, action: `${req.vm.name} could not be read from Nova` };
      if (s.status === 'VERIFY_RESIZE' && s['OS-EXT-SRV-ATTR:host'] === req.destination) {
        await this.confirm(req.vm);
        return { host: req.destination, action: `completed: the cold migration was confirmed on ${req.destination}` };
      }
      if (!s['OS-EXT-STS:task_state'] || this.clock.now() > until) {
        const host = s['OS-EXT-SRV-ATTR:host'];
        return { host, action: host === req.destination ? `the migration had finished: it runs on ${host}` : `rolled back by Nova: it is ${s.status} on ${host}` };
      }
      await this.clock.sleep(POLL_MS);
    }
  }

  /**
   * A source's fence: its compute service disabled, with the fence as the reason. A destination
   * is not marked: Nova refuses migrations to a disabled compute service.
   */
  async fence(host: string, fence: Fence | null, force = false): Promise<Outcome<object> & { holder?: Fence }> {
    try {
      const svc = this.services.get(host) ?? (await this.nova<{ services: Service[] }>('GET', `/os-services?binary=nova-compute&host=${encodeURIComponent(host)}`)).body.services[0];
      if (!svc) return failure('not-found', `no nova-compute on ${host}`, host);
      const held = this.fenceOf(svc);
      if (fence?.role === 'destination') return { ok: true };
      if (held && fence && held.plan !== fence.plan && !force) return { ok: false, reason: 'refused', detail: `${host} is held by another plan`, holder: held };
      if (!fence && svc.status === 'disabled' && !held) return { ok: true };
      const body = fence ? { status: 'disabled', disabled_reason: `${FENCE_PREFIX}${JSON.stringify(fence)}` } : { status: 'enabled' };
      const r = await this.nova<{ service: Service }>('PUT', `/os-services/${svc.id}`, body);
      this.services.set(host, r.body.service);
      return { ok: true };
    } catch (e) {
      return failure('unreachable', messageOf(e), host);
    }
  }

  async close(): Promise<void> {}
}

