/**
 * The libvirt driver: virsh on each host over SSH. Live migration is peer to peer, persistent,
 * undefining the source, copying exactly the disks the destination does not share; its progress
 * comes from the migration job. Every outcome is decided by looking the domain up on both hosts
 * afterwards, never from virsh's message (peer-to-peer mode often hides the real error).
 *
 * Data rules, by identity rather than by name: domains are addressed by UUID (`--domain`), so no
 * domain name can be read as an option or stand for another domain; whether two hosts share a
 * disk's folder is decided by a marker file (storage.ts), not by the filesystem's type; a copy
 * never goes onto a path that exists on the destination; a file is deleted only where it is not
 * shared with the other host and no domain on that host uses it; a source's leftover disk only
 * once the guest runs on the destination; a failed move's partial copies (paths that did not
 * exist on the destination before) are removed from it.
 */
import { homedir } from 'node:os';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { messageOf, userError } from '../../errors.ts';
import { withDefaults } from '../../plan/defaults.ts';
import type { LibvirtFleet } from '../../plan/plan-types.ts';
import {
  failure, wallClock,
  type CheckResult, type Clock, type ColdRequest, type Driver, type Failure, type LiveRequest, type Location, type MigrationOutcome, type Outcome,
  type PreflightItem, type RecoverRequest, type Recovery,
} from '../driver.ts';
import type { Fence, Host, Inventory, Vm } from '../types.ts';
import { SshPool } from './ssh.ts';
import { uniqueNames } from '../names.ts';
import { batchCommand, eachCommand, parseBatch, parseEach, UUID, type DomainRead } from './inventory.ts';
import { existing, foldersOf, probeSharing, separator, type Sharing } from './storage.ts';
import * as virsh from './virsh.ts';


/** virsh on the host's own system libvirtd (without -c, virsh probes URIs first: seconds per call). */
const VIRSH = ['virsh', '-c', 'qemu:///system'];
/** Milliseconds between two looks at a migration job. */
const POLL_MS = 1000;
/** How long virsh migrate may take to return after an abort before the driver stops waiting. */
const ABORT_GRACE_MS = 10_000;
/** How long a move waits for an earlier job of its domain to end (libvirt gives up on a silent peer after its keepalive: 30 s by default). */
const JOB_WAIT_MS = 90_000;
/** How often a live migration's destination is asked whether it still answers. */
const PROBE_EVERY_MS = 5_000;
/** How long a live migration's destination may stay silent before the job is aborted and it counts as unreachable. */
const DEST_SILENT_MS = 30_000;
/** How long a pair of hosts seen reaching each other's libvirtd counts as reaching without asking again. */
const PEER_FRESH_MS = 30_000;
/** How long a host may take to say where a domain is. */
const LOCATE_TIMEOUT_MS = 10_000;
/** How often a shutdown request is repeated while the guest has not stopped (Nova: 10 s). */
const SHUTDOWN_RETRY_MS = 10_000;
/** Where a host's fence is kept: it survives reboots until `evacuator clear` lifts it. */
const FENCE_FILE = '/var/lib/evacuator/fence.json';

/** The copy plan in a sentence. */
function describePlan(plan: CopyPlan, destination: string): string {
  const parts = [
    plan.copy.length ? `copies ${plan.copy.length} disk file(s) (free on ${destination})` : '',
    plan.shared.length ? `${plan.shared.length} on storage ${destination} shares (by marker)` : '',
    plan.unknown.length ? `${plan.unknown.length} whose sharing is unknown (not copied, not deleted)` : '',
  ].filter(Boolean);
  return parts.join('; ') || 'no disk files';
}

/** What a failed move could not remove from a destination that did not answer. */
interface Leftover {
  host: string;
  uuid: string;
  vm: string;
  paths: string[];
  at: string;
}

/** What the last inventory read of one domain, by UUID. */
interface Known {
  host: string;
  /** The domain's own name (inventory may show another: names.ts). */
  name: string;
  disks: virsh.DomainDisk[];
  cpu?: virsh.GuestCpu;
  virtType: string;
}

/** Which disk paths exist on a move's two hosts (undefined: the host did not say). */
interface StorageFacts {
  onSource: Set<string> | undefined;
  there: Set<string> | undefined;
}

/** A domain's disks as one move sees them: what it copies, and what the destination already shares. */
interface CopyPlan {
  copy: string[];
  /** Disk files whose folder the destination shares (never copied, never deleted). */
  shared: string[];
  /** Disk files whose sharing could not be decided (never copied, never deleted). */
  unknown: string[];
  /** Targets (vda, ...) of the disks to copy, for --migrate-disks. */
  targets: string[];
}

/** Not plan settings: ways to run the driver for measuring it. */
export interface DriverOptions {
  /** Read each domain alone (three virsh calls each) instead of the per-host batch: the path the batch replaced. */
  perDomain?: boolean;
}

export class LibvirtDriver implements Driver {
  readonly name = 'libvirt';
  /** virsh's job set-up over SSH and the switch-over: small guests on the testbed take 3-4 s in all. A prior the run corrects from its own migrations. */
  readonly setupS = 3;
  /** A prior: a guest's ACPI shutdown and a boot far enough to answer, on the testbed's small guests and typical servers. */
  readonly coldS = { shutdown: 10, boot: 10 };
  readonly clock: Clock;
  private readonly ssh: SshPool;
  private readonly labels: Map<string, Record<string, string>>;
  /** Domains as the last inventory read them, by UUID. */
  private known = new Map<string, Known>();
  /** Each host's own CPU element (what a host-passthrough guest needs on a destination). */
  private hostCpus = new Map<string, { element?: string; model: string }>();
  /** Domains whose migration job was aborted, with when. */
  private aborting = new Map<string, number>();
  /** Migrations (uuid>destination) aborted because the destination stopped answering. */
  private silentDestinations = new Set<string>();
  /** When each pair of hosts (source>destination) last showed the source reaching the destination's libvirtd. */
  private peersSeen = new Map<string, number>();

  private readonly config: LibvirtFleet;

  /** Defaults from the schema (withDefaults): each `!` is a field that has one; the file defaults are computed. */
  /**
   * @param leftoversFile where what a failed move could not remove from a destination that did
   * not answer is recorded; every later inventory that reaches that host removes it (only files no
   * domain there uses, a definition only of a guest that runs elsewhere) and drops the record.
   */
  constructor(given: LibvirtFleet, origin?: number, private readonly leftoversFile?: string, private readonly options: DriverOptions = {}) {
    const config = withDefaults(given, 'LibvirtFleet');
    this.config = config;
    const knownHosts = config.known_hosts ?? join(homedir(), '.ssh', 'known_hosts');
    if (!existsSync(knownHosts)) {
      throw userError(`known_hosts file ${knownHosts} does not exist: no host key can be checked`, [], 'give fleet.libvirt.known_hosts a file with the hosts\' keys (ssh-keyscan them, checked out of band)');
    }
    this.clock = wallClock(origin);
    this.ssh = new SshPool(new Map(config.hosts.map((h) => [h.name, { name: h.name, address: h.address ?? h.name, port: h.port! }])), {
      user: config.user!,
      identityFiles: config.identity_files,
      knownHostsFile: config.known_hosts ?? join(homedir(), '.ssh', 'known_hosts'),
      connectTimeoutMs: config.connect_timeout_s! * 1000,
    });
    this.labels = new Map(config.hosts.map((h) => [h.name, h.labels ?? {}]));
  }

  /** A command on the host (a rolling maintenance's step with on: host): each argument quoted by the SSH pool. */
  async exec(host: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.run(host, argv);
  }

  private async run(host: string, argv: string[], stdin?: string) {
    return this.ssh.exec(host, argv, stdin);
  }

  /** run, but a host that does not answer within ms counts as a rejection (a partitioned host can hang a channel for minutes). */
  private async runWithin(host: string, argv: string[], ms: number, stdin?: string) {
    const timer = new AbortController();
    return Promise.race([
      this.run(host, argv, stdin),
      this.clock.sleep(ms, timer.signal).then(() => Promise.reject(new Error(`${host} did not answer within ${Math.round(ms / 1000)} s`))),
    ]).finally(() => timer.abort());
  }

  /** stdout of a command that must succeed, else a CommandFailed naming it (the host answered: it is not unreachable). */
  private async out(host: string, argv: string[]): Promise<string> {
    const r = await this.run(host, argv);
    // -1: the connection closed under the command (a host that stopped answering), not a command that failed.
    if (r.code === -1) throw new Error(`${host}: the connection closed during ${argv.join(' ')}`);
    if (r.code !== 0) throw new CommandFailed(host, `${host}: ${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r.stdout;
  }

  /** virsh on host's own libvirtd with the domain named by its UUID (--domain: never read as an option, never another domain's name). */
  private dom(vm: Vm): string[] {
    return ['--domain', vm.uuid];
  }

  async inventory(): Promise<Outcome<{ inventory: Inventory }>> {
    const inv: Inventory = { hosts: [], vms: [], unreachable: [] };
    const found: { vm: Vm; disks: virsh.DomainDisk[] }[] = [];
    await Promise.all(this.config.hosts.map(async ({ name }) => {
      try {
        const [node, caps, ver, pool, fence] = await Promise.all([
          this.out(name, [...VIRSH, 'nodeinfo']), this.out(name, [...VIRSH, 'capabilities']), this.out(name, [...VIRSH, 'version']),
          this.run(name, [...VIRSH, 'pool-info', '--bytes', 'default']), this.readFence(name),
        ]);
        const n = virsh.fields(node);
        const c = virsh.capabilities(caps);
        const cpuElement = virsh.hostCpuElement(caps);
        this.hostCpus.set(name, { model: c.cpuModel, ...(cpuElement ? { element: cpuElement } : {}) });
        const host: Host = {
          name, uuid: c.uuid, cpuModel: c.cpuModel, hypervisor: virsh.version(ver), labels: this.labels.get(name) ?? {},
          capacity: {
            vcpu: Number(n.get('CPU(s)') ?? 0),
            memory_mib: Math.floor(virsh.bytesOf(n.get('Memory size')) / 2 ** 20),
            disk_gib: pool.code === 0 ? virsh.bytesOf(virsh.fields(pool.stdout).get('Capacity')) / 2 ** 30 : 0,
          },
          ...(fence ? { fence } : {}),
        };
        const domains = await this.domains(name, c.cpuModel);
        inv.hosts.push(host);
        found.push(...domains);
      } catch (e) {
        inv.unreachable.push({ host: name, detail: messageOf(e) });
      }
    }));
    const reachable = inv.hosts.map((h) => h.name);
    const hostsOf = new Map<string, string[]>();
    for (const { vm } of found) hostsOf.set(vm.uuid, [...hostsOf.get(vm.uuid) ?? [], vm.host]);
    const notes = await this.cleanLeftovers(reachable, hostsOf);
    if (notes.length) inv.notes = notes;
    // Which disk folders the other hosts share, by marker: a disk is local when some host does not see it.
    const folders = new Map<string, string[]>();
    for (const { vm, disks } of found) folders.set(vm.host, [...new Set([...folders.get(vm.host) ?? [], ...foldersOf(disks.filter(virsh.copyable).map((d) => d.path))])]);
    const sharing = await probeSharing((h, a) => this.run(h, a), folders, reachable);
    // libvirt makes names unique per host only: a name two hosts' domains share is made one per VM (names.ts; commands use the UUID).
    const names = uniqueNames(found.map((f) => ({ name: f.vm.name, id: f.vm.uuid, host: f.vm.host, f })));
    for (const [{ f: { vm, disks } }, name] of names) {
      const local = disks.filter(virsh.copyable).map((d) => d.path).filter((p) => [...sharing.get(vm.host)?.get(posix.dirname(p))?.values() ?? []].includes('local'));
      inv.vms.push({ ...vm, name, storage: local.length > 0 ? 'local' : 'shared', disks: local });
    }
    inv.hosts.sort((a, b) => a.name.localeCompare(b.name));
    inv.vms.sort((a, b) => a.name.localeCompare(b.name));
    return { ok: true, inventory: inv };
  }

  /**
   * Every domain of a host: one batched remote command (inventory.ts), then the domains it could
   * not read whole, alone; with `perDomain`, every domain alone (three virsh calls each: the
   * path the batch replaced, kept for domains the batch misses and for measuring against).
   */
  private async domains(host: string, hostCpuModel: string): Promise<DomainRead[]> {
    const sep = separator();
    let read: DomainRead[] = [];
    let again: string[];
    if (this.options.perDomain) {
      again = (await this.out(host, [...VIRSH, 'list', '--all', '--uuid'])).split('\n').map((l) => l.trim()).filter((u) => UUID.test(u));
    } else {
      ({ read, again } = parseBatch(await this.out(host, batchCommand(sep)), sep, host, hostCpuModel));
    }
    if (again.length > 0) read = [...read, ...parseEach(await this.out(host, eachCommand(sep, again)), sep, host, hostCpuModel)];
    for (const r of read) {
      if (r.xml) this.known.set(r.vm.uuid, { host, name: r.vm.name, disks: r.xml.disks, virtType: r.xml.virtType, ...(r.xml.cpu ? { cpu: r.xml.cpu } : {}) });
    }
    return read;
  }

  /**
   * libvirt's own checks, live: the source itself reaches the destination's libvirtd (peer to
   * peer; asked once per pair of hosts); the guest's CPU as libvirt will require it on the
   * destination; and the storage: no disk file to copy may exist at its path on the destination
   * (it could be another guest's: never overwritten). The generic checks come from discovery.
   */
  async preflight(items: PreflightItem[]): Promise<CheckResult[][]> {
    const peers = new Map<string, Promise<CheckResult>>();
    const peer = (source: string, destination: string) => {
      const key = `${source}\n${destination}`;
      let p = peers.get(key);
      if (!p) {
        p = this.peer(source, destination).then((r): CheckResult => ({
          check: 'peer', ok: r.ok,
          detail: r.ok ? `${source} reaches ${destination}'s libvirtd` : `${source} cannot reach ${destination}'s libvirtd: ${r.detail}`,
        }));
        peers.set(key, p);
      }
      return p;
    };
    // Per pair of hosts, for all its guests at once: the copy plans (marker files), then which paths exist on each end.
    const plans = new Map<string, Promise<{ plans: Map<string, CopyPlan>; facts: StorageFacts } | string>>();
    const storage = async (vm: Vm, destination: string): Promise<CheckResult> => {
      const key = `${vm.host}\n${destination}`;
      let p = plans.get(key);
      if (!p) {
        const same = items.filter((i) => i.vm.host === vm.host && i.destination === destination).map((i) => i.vm);
        p = this.copyPlans(same, destination).then(async (got) => {
          if (typeof got === 'string') return got;
          const copy = same.flatMap((v) => got.get(v.uuid)!.copy);
          const kept = same.flatMap((v) => this.keptFiles(v, got.get(v.uuid)!).map((k) => k.path));
          return { plans: got, facts: await this.storageFacts(vm.host, destination, copy, kept) };
        });
        plans.set(key, p);
      }
      const got = await p;
      if (typeof got === 'string') return { check: 'storage', ok: false, detail: got };
      const plan = got.plans.get(vm.uuid)!;
      // A guest that may fall back to cold is checked for a cold copy too (its backing chain).
      const problem = await this.storageProblem(vm, destination, plan, vm.state === 'running' || vm.state === 'paused' ? 'preflight' : 'cold', got.facts);
      if (problem) return { check: 'storage', ok: false, detail: problem.text };
      return { check: 'storage', ok: true, detail: describePlan(plan, destination) };
    };
    // libvirt's CPU answer depends only on the CPU asked for and the destination (and, for
    // host-passthrough, the source host): asked once per distinct question, not per guest.
    const cpus = new Map<string, Promise<CheckResult | undefined>>();
    const cpuOf = (vm: Vm, destination: string) => {
      const k = this.known.get(vm.uuid);
      const running = vm.state === 'running' || vm.state === 'paused';
      const key = JSON.stringify([destination, k?.virtType, k?.cpu, running, k?.cpu?.mode === 'custom' ? '' : vm.host]);
      let p = cpus.get(key);
      if (!p) cpus.set(key, (p = this.compareCpu(vm, destination)));
      return p;
    };
    return Promise.all(items.map(async ({ vm, destination }) => {
      const [p, cpu, st] = await Promise.all([peer(vm.host, destination), cpuOf(vm, destination), storage(vm, destination)]);
      const clash = this.nameTaken(vm, destination);
      return [p, ...(cpu ? [cpu] : []), st, ...(clash ? [{ check: 'name' as const, ok: false, detail: clash }] : [])];
    }));
  }

  /**
   * Whether source reaches destination's libvirtd itself (as peer-to-peer migration and disk
   * copies need), within 20 s. A pair seen reaching within PEER_FRESH_MS is not asked again (each
   * ask is an SSH login from source to destination: at 50 guests, 50 of them before the moves); a
   * pair that failed is always asked again, and so is every pair when `now` (before a cold move
   * shuts its guest down: a live move that fails leaves its guest running, a cold one would have
   * stopped it for nothing).
   */
  private async peer(source: string, destination: string, now = false): Promise<{ ok: boolean; detail: string }> {
    const key = `${source}>${destination}`;
    const seen = this.peersSeen.get(key);
    if (!now && seen !== undefined && this.clock.now() - seen < PEER_FRESH_MS) return { ok: true, detail: '' };
    const r = await this.runWithin(source, ['timeout', '20', 'virsh', '-c', `qemu+ssh://${destination}/system`, 'hostname'], 30_000)
      .catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    if (r.code === 0) this.peersSeen.set(key, this.clock.now());
    else this.peersSeen.delete(key);
    return { ok: r.code === 0, detail: r.code === 0 ? '' : r.code === 124 ? 'no answer within 20 s' : r.stderr.trim().split('\n').at(-1) ?? `exit ${r.code}` };
  }

  /**
   * For moves of these VMs (all on one source) to destination: which disk files each copies.
   * A folder is copied only where the destination was shown not to share it. A string when the
   * destination could not be asked.
   */
  private async copyPlans(vms: Vm[], destination: string): Promise<Map<string, CopyPlan> | string> {
    if (vms.length === 0) return new Map();
    const source = vms[0].host;
    const disks = new Map(vms.map((vm) => [vm.uuid, this.disksOf(vm)]));
    const folders = foldersOf([...disks.values()].flat().filter(virsh.copyable).map((d) => d.path));
    const sharing = await probeSharing((h, a) => this.run(h, a), new Map([[source, folders]]), [source, destination]);
    const seen = sharing.get(source)!;
    const plans = new Map<string, CopyPlan>();
    for (const vm of vms) {
      const plan: CopyPlan = { copy: [], shared: [], unknown: [], targets: [] };
      for (const d of disks.get(vm.uuid)!.filter(virsh.copyable)) {
        const s: Sharing = seen.get(posix.dirname(d.path))?.get(destination) ?? 'unknown';
        if (s === 'local') {
          plan.copy.push(d.path);
          plan.targets.push(d.target);
        } else (s === 'shared' ? plan.shared : plan.unknown).push(d.path);
      }
      plans.set(vm.uuid, plan);
    }
    return plans;
  }

  /** The VM's disks as the last inventory read them, else the files the journal recorded. */
  private disksOf(vm: Vm): virsh.DomainDisk[] {
    return this.known.get(vm.uuid)?.disks
      ?? (vm.disks ?? []).map((path, i) => ({ type: 'file', device: 'disk', target: `disk${i}`, path, readonly: false, shareable: false, backing: [] }));
  }

  /**
   * What libvirt will require of the destination's CPU: a named model (custom, and every running
   * host-model guest, whose live definition libvirt has expanded) through `virsh
   * hypervisor-cpu-compare`; host-passthrough and maximum, the source host's own CPU through
   * `virsh cpu-compare` while the guest runs. A shut-off guest gets its CPU when it starts, on
   * whichever host: nothing to compare. No CPU element: QEMU's baseline, the table's answer stands.
   */
  private async compareCpu(vm: Vm, destination: string): Promise<CheckResult | undefined> {
    const k = this.known.get(vm.uuid);
    const cpu = k?.cpu;
    if (!cpu) return undefined;
    const running = vm.state === 'running' || vm.state === 'paused';
    if (cpu.mode === 'custom' && cpu.element) {
      const r = await this.run(destination, [...VIRSH, 'hypervisor-cpu-compare', '--virttype', k.virtType, '/dev/stdin'], cpu.element);
      const said = (r.stdout.trim() || r.stderr.trim()).split('\n').at(-1) ?? '';
      const ok = r.code === 0 && /identical|superset/.test(said);
      return { check: 'cpu', ok, detail: `libvirt on ${destination}: ${said.replace(/\/dev\/stdin/g, `the guest's CPU (${cpu.model})`)}` };
    }
    if (!running) return { check: 'cpu', ok: true, detail: `CPU mode ${cpu.mode}: the guest is ${vm.state}; libvirt fits its CPU to the host it starts on` };
    if (cpu.mode === 'host-passthrough' || cpu.mode === 'maximum') {
      const src = this.hostCpus.get(vm.host)?.element;
      if (!src) return { check: 'cpu', ok: false, detail: `CPU mode ${cpu.mode}: ${vm.host}'s own CPU is unknown, so ${destination} cannot be compared with it` };
      const r = await this.run(destination, [...VIRSH, 'cpu-compare', '/dev/stdin'], src);
      const said = (r.stdout.trim() || r.stderr.trim()).split('\n').at(-1) ?? '';
      const ok = r.code === 0 && /identical|superset/.test(said);
      return { check: 'cpu', ok, detail: `CPU mode ${cpu.mode} needs ${vm.host}'s CPU: libvirt on ${destination}: ${said.replace(/\/dev\/stdin/g, `${vm.host}'s CPU`)}` };
    }
    return { check: 'cpu', ok: true, detail: `CPU mode ${cpu.mode}: libvirt fits it to ${destination}` };
  }

  async liveMigrate(req: LiveRequest): Promise<MigrationOutcome> {
    const { vm, destination } = req;
    const got = await this.prepareCopy(vm, destination, 'live');
    if ('ok' in got) return got;
    const plan = got;
    const argv = [...VIRSH, 'migrate', '--live', '--persistent', '--undefinesource', '--p2p',
      ...(plan.copy.length > 0 ? ['--copy-storage-all', '--migrate-disks', plan.targets.join(',')] : []),
      ...(req.autoConverge ? ['--auto-converge'] : []),
      ...(req.postCopy ? ['--postcopy', '--postcopy-after-precopy'] : []),
      ...(req.bandwidthMibps ? ['--bandwidth', String(Math.max(1, Math.round(req.bandwidthMibps)))] : []),
      ...this.dom(vm), '--desturi', `qemu+ssh://${destination}/system`];
    this.aborting.delete(vm.uuid);
    let finished = false;
    const migration = this.run(vm.host, argv).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message })).finally(() => (finished = true));
    // Watch the job on the source; set the downtime limit once the job exists; and ask the
    // destination itself now and then: one that stops answering (a partition) is not left to the
    // deadline, the job is aborted and the destination reported unreachable.
    let limitSet = false;
    let lastSeen = this.clock.now();
    let lastAsked = -Infinity;
    let asking = false;
    let silent = false;
    while (!finished) {
      const tick = new AbortController();
      await Promise.race([migration, this.clock.sleep(POLL_MS, tick.signal)]);
      tick.abort();
      if (finished) break;
      if (!asking && this.clock.now() - lastAsked >= PROBE_EVERY_MS) {
        asking = true;
        lastAsked = this.clock.now();
        void this.runWithin(destination, ['true'], LOCATE_TIMEOUT_MS).then((r) => { if (r.code === 0) lastSeen = this.clock.now(); }, () => {}).finally(() => (asking = false));
      }
      if (!silent && this.clock.now() - lastSeen > DEST_SILENT_MS) {
        silent = true;
        this.silentDestinations.add(`${vm.uuid}>${destination}`);
        await this.abort(vm);
      }
      // A partitioned destination can hang virsh for minutes even after the abort: stop waiting
      // and decide from where the guest is (it counts as on its source until proven otherwise).
      const abortedAt = this.aborting.get(vm.uuid);
      if (abortedAt !== undefined && this.clock.now() - abortedAt > ABORT_GRACE_MS) {
        return this.settle(vm, destination, `virsh migrate did not return ${ABORT_GRACE_MS / 1000} s after the abort`, true, plan);
      }
      if (!limitSet) limitSet = (await this.run(vm.host, [...VIRSH, 'migrate-setmaxdowntime', ...this.dom(vm), '--downtime', String(req.maxDowntimeMs)]).catch(() => ({ code: -1 }))).code === 0;
      const job = await this.runWithin(vm.host, [...VIRSH, 'domjobinfo', ...this.dom(vm)], LOCATE_TIMEOUT_MS).catch(() => undefined);
      if (job?.code === 0) {
        const f = virsh.fields(job.stdout);
        if (f.get('Job type') === 'Unbounded') {
          req.onProgress({ vm: vm.name, phase: 'memory', sentBytes: virsh.bytesOf(f.get('Data processed')) || 0, remainingBytes: virsh.bytesOf(f.get('Data remaining')) || 0, rateBps: virsh.bytesOf(f.get('Memory bandwidth')?.replace('/s', '')) || 0 });
        }
      }
    }
    const result = await migration;
    return this.settle(vm, destination, result.stderr, this.aborting.has(vm.uuid), plan);
  }

  /**
   * Before a move: the destination answers (from here and from the source), the guest is not
   * already there, and the copy plan, whose files must not exist on the destination. A failure
   * outcome otherwise, with nothing changed.
   */
  private async prepareCopy(vm: Vm, destination: string, method: 'live' | 'cold'): Promise<CopyPlan | MigrationOutcome> {
    const here = await this.locate(vm, [vm.host, destination]);
    if (here.unreachable.includes(destination)) return failure('unreachable', `${destination} does not answer; nothing was changed`, destination);
    if (here.unreachable.includes(vm.host)) return failure('unreachable', `${vm.host} does not answer; nothing was changed`, vm.host);
    if (!here.found.some((f) => f.host === vm.host)) return failure('not-found', `${vm.name} (${vm.uuid}) is not on ${vm.host}`, vm.host);
    if (here.found.some((f) => f.host === destination)) return failure('refused', `${destination} already has a domain with ${vm.name}'s UUID ${vm.uuid}; nothing was changed`, destination);
    // libvirt names are unique per host: another domain of this name there would make the define fail after a cold move's shutdown.
    const own = this.known.get(vm.uuid)?.name ?? vm.name;
    const other = await this.run(destination, [...VIRSH, 'domuuid', '--domain', own]).catch(() => undefined);
    if (other && other.code === 0 && other.stdout.trim() && other.stdout.trim().toLowerCase() !== vm.uuid.toLowerCase()) {
      return failure('refused', `${destination} already has another domain named ${own} (UUID ${other.stdout.trim()}); libvirt names are unique per host; nothing was changed`, destination);
    }
    const peer = await this.peer(vm.host, destination, method === 'cold');
    if (!peer.ok) return failure('unreachable', `${vm.host} cannot reach ${destination}'s libvirtd (${peer.detail}); nothing was changed`, destination);
    // An earlier job of this domain (a migration aborted towards a host that stopped answering)
    // holds it until libvirt gives up on that peer: wait for it rather than fail, or shut it down, beside it.
    for (const until = this.clock.now() + JOB_WAIT_MS; ;) {
      const job = await this.runWithin(vm.host, [...VIRSH, 'domjobinfo', ...this.dom(vm)], LOCATE_TIMEOUT_MS).catch(() => undefined);
      const type = job?.code === 0 ? virsh.fields(job.stdout).get('Job type') : 'None';
      if (!type || type === 'None' || type === 'Completed' || type === 'Failed' || type === 'Cancelled') break;
      if (this.clock.now() > until) return failure('refused', `an earlier job of ${vm.name} (${type}) still runs on ${vm.host} after ${JOB_WAIT_MS / 1000} s; nothing was changed`, vm.host);
      await this.clock.sleep(POLL_MS);
    }
    const plans = await this.copyPlans([vm], destination);
    if (typeof plans === 'string') return failure('unreachable', plans, destination);
    const plan = plans.get(vm.uuid)!;
    const problem = await this.storageProblem(vm, destination, plan, method);
    if (problem) return failure(problem.unanswered ? 'unreachable' : 'refused', `${problem.text}; nothing was changed`, problem.unanswered ?? (problem.onSource ? vm.host : destination));
    return plan;
  }

  /**
   * Why the guest's files would not serve it on destination, or undefined: a file to copy missing
   * on the source, or already at its path on the destination (never overwritten), or whose folder
   * the destination lacks; a file not copied (a CD, a read-only or shareable disk, one on shared
   * storage or of unknown sharing) missing on the destination, where the guest could not start;
   * for a cold copy, a backing file the copy would not carry that the destination lacks.
   */
  private async storageProblem(vm: Vm, destination: string, plan: CopyPlan, method: 'live' | 'cold' | 'preflight', facts?: StorageFacts): Promise<{ text: string; unanswered?: string; onSource?: boolean } | undefined> {
    const kept = this.keptFiles(vm, plan);
    const folders = foldersOf(plan.copy);
    const { onSource, there } = facts ?? await this.storageFacts(vm.host, destination, plan.copy, kept.map((k) => k.path));
    if (!onSource) return { text: `${vm.host} did not say whether its disk files exist`, unanswered: vm.host };
    const gone = plan.copy.filter((p) => !onSource.has(p));
    if (gone.length > 0) return { text: `${gone.join(', ')} of ${vm.name} does not exist on ${vm.host}: nothing to copy`, onSource: true };
    if (!there) return { text: `${destination} did not say whether the disk paths exist`, unanswered: destination };
    const clash = plan.copy.filter((p) => there.has(p));
    if (clash.length > 0) return { text: `${clash.join(', ')} already exists on ${destination} (another guest's disk?); evacuator never overwrites a file a guest may use` };
    const noFolder = folders.filter((f) => !there.has(f));
    if (noFolder.length > 0) return { text: `${destination} has no folder ${noFolder.join(', ')} to copy ${vm.name}'s disks into` };
    const absent = kept.filter((k) => !there.has(k.path));
    if (absent.length > 0) return { text: `${absent.map((a) => `${a.path} (${a.kind}: not copied)`).join(', ')} does not exist on ${destination}, where ${vm.name} could not start` };
    if (method === 'cold' && plan.copy.length > 0) {
      // A cold copy carries the file itself, not its backing chain: the destination must have every backing file already.
      const chain = await this.run(vm.host, ['sh', '-c', 'for f do qemu-img info -U --backing-chain --output=json -- "$f" || exit 3; done', 'sh', ...plan.copy]).catch(() => undefined);
      if (!chain || chain.code !== 0) return { text: `${vm.host} could not read the backing chains of ${plan.copy.join(', ')} (qemu-img info)`, onSource: true };
      const backing = [...new Set([...chain.stdout.matchAll(/"full-backing-filename":\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string))];
      const copied = new Set(plan.copy);
      const needed = backing.filter((b) => !copied.has(b));
      if (needed.length > 0) {
        const sizes = async (h: string) => (await this.run(h, ['sh', '-c', 'for f do stat -c %s -- "$f" 2>/dev/null || echo -; done', 'sh', ...needed]).catch(() => undefined))?.stdout.trim().split('\n');
        const [a, b] = await Promise.all([sizes(vm.host), sizes(destination)]);
        const lacking = needed.filter((_, i) => !a || !b || b[i] === '-' || a[i] !== b[i]);
        if (lacking.length > 0) return { text: `${vm.name}'s disks have backing files a cold copy would not carry and ${destination} lacks (or holds another of that size): ${lacking.join(', ')}; move it live (which copies the whole chain), put the base on ${destination}, or flatten the disk first` };
      }
    }
    return undefined;
  }

  /** Why destination cannot take vm under its own name (another domain there has it), from the inventory; undefined when it can. */
  private nameTaken(vm: Vm, destination: string): string | undefined {
    const own = this.known.get(vm.uuid)?.name ?? vm.name;
    for (const [uuid, k] of this.known) {
      if (k.host === destination && k.name === own && uuid !== vm.uuid) return `${destination} already has another domain named ${own} (UUID ${uuid}); libvirt names are unique per host`;
    }
    return undefined;
  }

  /** The guest's files a move does not copy (CDs, read-only, shareable, shared or of unknown sharing), each with why. */
  private keptFiles(vm: Vm, plan: CopyPlan): { path: string; kind: string }[] {
    return this.disksOf(vm).filter((d) => d.type === 'file' && d.path && !plan.copy.includes(d.path)).map((d) => ({
      path: d.path!,
      kind: d.device === 'cdrom' || d.device === 'floppy' ? `a ${d.device}` : d.readonly ? 'read-only' : d.shareable ? 'shareable' : plan.shared.includes(d.path!) ? 'on storage both hosts share' : 'of unknown sharing',
    }));
  }

  /** Which of these paths exist on source (files to copy) and on destination (those, the files kept, and the copies' folders): one command on each, for any number of guests. */
  private async storageFacts(source: string, destination: string, copy: string[], kept: string[]): Promise<StorageFacts> {
    const exec = (h: string, a: string[]) => this.run(h, a);
    const [onSource, there] = await Promise.all([existing(exec, source, copy), existing(exec, destination, [...new Set([...copy, ...kept, ...foldersOf(copy)])])]);
    return { onSource, there };
  }

  /** Decide a live migration's outcome from where the domain is now; clean what a failed one left. */
  private async settle(vm: Vm, destination: string, stderr: string, aborted: boolean, plan: CopyPlan): Promise<MigrationOutcome> {
    const where = await this.locate(vm, [vm.host, destination]);
    const onDest = where.found.find((f) => f.host === destination);
    const onSource = where.found.find((f) => f.host === vm.host);
    const message = stderr.trim().split('\n').at(-1) ?? '';
    const wentSilent = this.silentDestinations.delete(`${vm.uuid}>${destination}`);
    if ((onDest?.state === 'running' || (onDest?.state === 'paused' && vm.state === 'paused')) && !onSource) {
      const done = await this.run(destination, [...VIRSH, 'domjobinfo', '--completed', ...this.dom(vm)]).catch(() => undefined);
      const f = virsh.fields(done?.stdout ?? '');
      // Only now, with the guest running on the destination and gone from the source, delete the copies it left there.
      const removed = await this.removeFiles(vm.host, plan.copy);
      return {
        ok: true, bytes: virsh.bytesOf(f.get('Data processed')) || 0, downtimeMs: Number(/(\d+)/.exec(f.get('Total downtime') ?? '')?.[1] ?? 0),
        ...(removed.kept.length ? { note: `kept on ${vm.host}: ${removed.kept.join(', ')} (${removed.why})` } : {}),
      };
    }
    if (onSource) {
      // Failed or aborted: the destination keeps nothing of it (a definition, the disk files the copy made).
      const debris = await this.dropDestination(vm, destination, onDest?.state, plan.copy);
      if (where.unreachable.includes(destination) || wentSilent) return failure('unreachable', `${destination} ${wentSilent ? `stopped answering for ${DEST_SILENT_MS / 1000} s during the migration, which was aborted` : 'does not answer'}: ${message}${debris}`, destination);
      // libvirt judges sharedness by filesystem type: storage it does not know is "unsafe" unless the disk's cache is none.
      const cached = this.disksOf(vm).filter((d) => d.path && plan.shared.includes(d.path) && d.cache !== 'none' && d.cache !== 'directsync').map((d) => d.path!);
      const hint = /unsafe/i.test(message) && plan.shared.length > 0
        ? ` (${plan.shared.join(', ')} ${plan.shared.length > 1 ? 'are' : 'is'} on storage ${destination} shares, shown by a marker file, but libvirt does not know the filesystem as shared${cached.length ? `: give ${cached.join(', ')} cache='none' to let it migrate live` : ''})` : '';
      return failure(aborted ? 'aborted' : 'error', `${message || 'migration failed'}${hint}; the guest stays on its source${debris}`, aborted ? undefined : destination);
    }
    if (where.unreachable.includes(destination)) return failure('unreachable', `${destination} does not answer: ${message}`, destination);
    if (where.unreachable.includes(vm.host)) return failure('unreachable', `${vm.host} does not answer: ${message}`, vm.host);
    return failure('not-found', `${vm.name} is on neither ${vm.host} nor ${destination}: ${message}`, vm.host);
  }

  /**
   * Remove what a failed move left on the destination: a definition of the VM (by UUID; a
   * running copy only when the source still runs it), then the copied files no domain there uses.
   * Returns what could not be removed, for the report ("" when nothing is left).
   */
  private async dropDestination(vm: Vm, destination: string, state: string | undefined, copied: string[]): Promise<string> {
    try {
      if (state === 'running' || state === 'paused') await this.run(destination, [...VIRSH, 'destroy', ...this.dom(vm)]);
      if (state) await this.run(destination, [...VIRSH, 'undefine', ...this.dom(vm)]);
    } catch {
      return this.leftBehind(vm, destination, Boolean(state), copied);
    }
    const r = await this.removeFiles(destination, copied);
    if (r.unanswered) return this.leftBehind(vm, destination, false, copied);
    return r.kept.length ? `; left on ${destination}: ${r.kept.join(', ')} (${r.why})` : '';
  }

  /**
   * What a failed move may have left on a destination that did not answer: said in the outcome,
   * and recorded (with a leftovers file) for the next inventory that reaches it.
   */
  private leftBehind(vm: Vm, host: string, definition: boolean, paths: string[]): string {
    if (!definition && paths.length === 0) return '';
    this.updateLeftovers((list) => [...list.filter((l) => !(l.host === host && l.uuid === vm.uuid)), { host, uuid: vm.uuid, vm: vm.name, paths, at: new Date().toISOString() }]);
    const what = [definition ? `${vm.name}'s definition` : '', ...paths].filter(Boolean).join(', ');
    return `; ${host} did not answer: it may still hold ${what || `part of ${vm.name}`}${this.leftoversFile ? ` (recorded in ${this.leftoversFile}: the next run that reaches ${host} removes it)` : ''}`;
  }

  private readLeftovers(): Leftover[] {
    if (!this.leftoversFile || !existsSync(this.leftoversFile)) return [];
    try {
      const got = JSON.parse(readFileSync(this.leftoversFile, 'utf8')) as unknown;
      return Array.isArray(got) ? got.filter((l): l is Leftover => typeof l?.host === 'string' && typeof l?.uuid === 'string' && Array.isArray(l?.paths)) : [];
    } catch {
      return [];
    }
  }

  private updateLeftovers(change: (list: Leftover[]) => Leftover[]): void {
    if (!this.leftoversFile) return;
    try {
      const next = change(this.readLeftovers());
      const tmp = `${this.leftoversFile}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(next, null, 1)}\n`);
      renameSync(tmp, this.leftoversFile);
    } catch {
      // A record that cannot be written leaves only the outcome's words: never a reason to fail the move.
    }
  }

  /**
   * Remove, from hosts that answer now, what earlier failed moves recorded: a definition of the
   * guest only when it is not running there and runs (or is defined) on another host; files only
   * where no domain uses them. Returns what was done, for the run's warnings.
   */
  private async cleanLeftovers(reachable: string[], where: Map<string, string[]>): Promise<string[]> {
    const notes: string[] = [];
    for (const l of this.readLeftovers().filter((x) => reachable.includes(x.host))) {
      const vm = { name: l.vm, uuid: l.uuid, host: l.host } as Vm;
      const here = await this.locate(vm, [l.host]);
      if (here.unreachable.length) continue;
      const state = here.found[0]?.state;
      if (state === 'running' || state === 'paused') {
        // It runs there: the move finished after all; nothing of it is debris.
        notes.push(`${l.vm} runs on ${l.host}, where a failed move was recorded: nothing removed there`);
      } else {
        if (state && (where.get(l.uuid) ?? []).some((h) => h !== l.host)) await this.run(l.host, [...VIRSH, 'undefine', ...this.dom(vm)]).catch(() => undefined);
        const r = await this.removeFiles(l.host, l.paths);
        if (r.unanswered) continue;
        notes.push(`leftovers of an earlier failed move of ${l.vm} removed from ${l.host}${r.kept.length ? `; kept ${r.kept.join(', ')} (${r.why})` : ''}`);
      }
      this.updateLeftovers((list) => list.filter((x) => !(x.host === l.host && x.uuid === l.uuid)));
    }
    return notes;
  }

  /**
   * Delete disk files on host, each only if no domain there uses it (its disks or their backing
   * chains): through its storage pool (so the pool stops listing it; a stale entry makes a later
   * migration back fail), else directly. What was kept, and why.
   */
  private async removeFiles(host: string, paths: string[]): Promise<{ kept: string[]; why: string; unanswered?: true }> {
    if (paths.length === 0) return { kept: [], why: '' };
    const used = await this.usedPaths(host).catch(() => undefined);
    if (!used) return { kept: paths, why: `${host} did not list its domains' disks, so nothing was deleted`, unanswered: true };
    const kept = paths.filter((p) => used.has(p));
    for (const p of paths.filter((x) => !used.has(x))) {
      const r = await this.run(host, [...VIRSH, 'vol-delete', '--vol', p]).catch(() => ({ code: -1 }));
      if (r.code !== 0) await this.run(host, ['rm', '-f', '--', p]).catch(() => undefined);
    }
    return { kept, why: kept.length ? 'a domain there uses it' : '' };
  }

  /** Every file any domain on host uses (disks and backing chains), read now. */
  private async usedPaths(host: string): Promise<Set<string>> {
    const sep = separator();
    const script = 's=$1; for u in $(virsh -c qemu:///system list --all --uuid) ; do printf "\\n%s\\n" "$s"; virsh -c qemu:///system dumpxml --domain "$u" || exit 3; done; exit 0';
    const out = await this.out(host, ['sh', '-c', script, 'sh', sep]);
    const used = new Set<string>();
    for (const xml of out.split(`\n${sep}\n`).slice(1)) {
      for (const d of virsh.domainXml(xml).disks) {
        if (d.path) used.add(d.path);
        for (const b of d.backing) used.add(b);
      }
    }
    return used;
  }

  async abort(vm: Vm): Promise<Outcome<object>> {
    this.aborting.set(vm.uuid, this.clock.now());
    const r = await this.runWithin(vm.host, [...VIRSH, 'domjobabort', ...this.dom(vm)], LOCATE_TIMEOUT_MS).catch((e: Error) => ({ code: -1, stderr: e.message }));
    return r.code === 0 ? { ok: true } : failure('error', r.stderr.trim(), vm.host);
  }

  /**
   * Only once the destination has answered (from here and from the source) and the copy plan
   * holds: shut down (forced off only if allowed), copy each disk the destination does not share
   * host to host over SFTP with a checksum compared on both ends, define the inactive definition
   * on the destination and start it if it ran; only once it runs there, undefine it on the
   * source and delete its copied disks. Any failure before that, or the deadline, undoes what
   * the destination got and starts the guest again on its source. A shut-off guest stays off.
   */
  async coldMigrate(req: ColdRequest): Promise<MigrationOutcome> {
    const { vm, destination } = req;
    const src = vm.host;
    const t0 = this.clock.now();
    const left = () => req.deadlineMs - (this.clock.now() - t0);
    const got = await this.prepareCopy(vm, destination, 'cold');
    if ('ok' in got) return got;
    const plan = got;
    const was = (await this.locate(vm, [src])).found[0]?.state;
    if (!was) return failure('not-found', `${vm.name} is not on ${src}`, src);
    if (was === 'paused' && !req.forceOff) return failure('refused', `${vm.name} is paused: a paused guest cannot shut down cleanly, and the plan does not allow forcing it off`, src);
    req.onProgress({ vm: vm.name, phase: 'shutdown', sentBytes: 0, remainingBytes: 0, rateBps: 0 });
    if (was !== 'shutoff') {
      const off = was === 'paused' ? await this.powerOff(vm) : await this.shutDown(vm, req.shutdownTimeoutS, req.forceOff);
      if (!off.ok) return off;
    }
    const copied: string[] = [];
    let defined = false;
    const undo = async (reason: Failure['reason'], detail: string, host?: string): Promise<MigrationOutcome> => {
      let debris = '';
      try {
        if (defined) await this.run(destination, [...VIRSH, 'undefine', ...this.dom(vm)]);
        const r = await this.removeFiles(destination, copied);
        if (r.unanswered) debris = this.leftBehind(vm, destination, false, copied);
        else if (r.kept.length) debris = `; left on ${destination}: ${r.kept.join(', ')} (${r.why})`;
      } catch {
        debris = this.leftBehind(vm, destination, defined, copied);
      }
      if (was === 'running' || was === 'paused') await this.run(src, [...VIRSH, 'start', ...this.dom(vm)]).catch(() => undefined);
      return failure(reason, `${detail}; ${vm.name} is back on ${src}${was === 'shutoff' ? ' (shut off, as it was)' : ''}${debris}`, host);
    };
    let bytes = 0;
    try {
      for (const path of plan.copy) {
        if (left() <= 0) return await undo('timeout', `the cold migration passed its deadline of ${Math.round(req.deadlineMs / 1000)} s`);
        const before = await this.checksum(src, path);
        req.onProgress({ vm: vm.name, phase: 'copy', sentBytes: bytes, remainingBytes: 0, rateBps: 0 });
        copied.push(path);
        // scp -s: SFTP, so the remote path is data, not shell text; -l takes Kbit/s (the plan's bandwidth cap).
        const limit = req.bandwidthMibps ? ['-l', String(Math.max(1, Math.round(req.bandwidthMibps * 8 * 1024)))] : [];
        const secs = String(Math.max(1, Math.ceil(left() / 1000)));
        // ServerAlive: a destination cut off mid-copy ends the copy in seconds, not at TCP's own timeout.
        const cp = await this.run(src, ['timeout', secs, 'scp', '-s', '-q', '-p', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3', ...limit, '--', path, `${destination}:${path}`]);
        if (cp.code === 124) return await undo('timeout', `copying ${path} to ${destination} passed the deadline of ${Math.round(req.deadlineMs / 1000)} s`);
        if (cp.code !== 0) {
          const answers = await this.runWithin(destination, ['true'], LOCATE_TIMEOUT_MS).then((r) => r.code === 0, () => false);
          return await undo(answers ? 'error' : 'unreachable', `copying ${path} to ${destination} failed: ${cp.stderr.trim()}${answers ? '' : `; ${destination} does not answer`}`, destination);
        }
        const after = await this.checksum(destination, path);
        if (after !== before) return await undo('error', `${path} differs after the copy (sha256 ${before} on ${src}, ${after} on ${destination})`, destination);
        bytes += Number((await this.out(destination, ['stat', '-c', '%s', '--', path])).trim());
      }
      await this.run(destination, [...VIRSH, 'pool-refresh', 'default']);
      const xml = await this.out(src, [...VIRSH, 'dumpxml', '--inactive', '--migratable', ...this.dom(vm)]);
      const def = await this.run(destination, [...VIRSH, 'define', '/dev/stdin'], xml);
      if (def.code !== 0) return await undo('error', `define on ${destination} failed: ${def.stderr.trim()}`, destination);
      defined = true;
      req.onProgress({ vm: vm.name, phase: 'boot', sentBytes: bytes, remainingBytes: 0, rateBps: 0 });
      if (was === 'running' || was === 'paused') {
        const start = await this.run(destination, [...VIRSH, 'start', ...this.dom(vm)]);
        const now = await this.locate(vm, [destination]);
        if (start.code !== 0 || now.found[0]?.state !== 'running') return await undo('error', `start on ${destination} failed: ${start.stderr.trim()}`, destination);
        if (was === 'paused') await this.run(destination, [...VIRSH, 'suspend', ...this.dom(vm)]);
      }
    } catch (e) {
      // A command that failed on a host that answered is an error; a host that did not answer is unreachable.
      if (e instanceof CommandFailed) return undo('error', e.message, e.host);
      return undo('unreachable', messageOf(e), destination);
    }
    // The destination has it: now, and only now, remove it from the source.
    req.onProgress({ vm: vm.name, phase: 'cleanup', sentBytes: bytes, remainingBytes: 0, rateBps: 0 });
    await this.run(src, [...VIRSH, 'undefine', ...this.dom(vm)]);
    const removed = await this.removeFiles(src, plan.copy);
    return {
      ok: true, bytes, downtimeMs: was === 'shutoff' ? 0 : this.clock.now() - t0,
      ...(removed.kept.length ? { note: `kept on ${src}: ${removed.kept.join(', ')} (${removed.why})` } : {}),
    };
  }

  /** Shut the guest down cleanly where it is (powered off past the timeout when allowed), or start it where it is. */
  async power(vm: Vm, to: 'off' | 'on', opts: { timeoutS: number; forceOff: boolean }): Promise<Outcome<object>> {
    try {
      const state = (await this.locate(vm, [vm.host])).found[0]?.state;
      if (!state) return failure('not-found', `${vm.name} is not on ${vm.host}`, vm.host);
      if (to === 'off') {
        if (state === 'shutoff') return { ok: true };
        if (state === 'paused' && !opts.forceOff) return failure('refused', `${vm.name} is paused: a paused guest cannot shut down cleanly, and the plan does not allow forcing it off`, vm.host);
        if (state !== 'running' && state !== 'paused') return failure('refused', `${vm.name} is ${state}: only a running guest is shut down`, vm.host);
        const off = state === 'paused' ? await this.powerOff(vm) : await this.shutDown(vm, opts.timeoutS, opts.forceOff);
        return off.ok ? { ok: true } : off;
      }
      if (state === 'running') return { ok: true };
      if (state !== 'shutoff') return failure('refused', `${vm.name} is ${state}: only a shut-off guest is started`, vm.host);
      const r = await this.run(vm.host, [...VIRSH, 'start', ...this.dom(vm)]);
      const now = (await this.locate(vm, [vm.host])).found[0]?.state;
      return now === 'running' ? { ok: true } : failure('error', `start on ${vm.host} failed: ${r.stderr.trim() || `it is ${now ?? 'gone'}`}`, vm.host);
    } catch (e) {
      return failure(e instanceof CommandFailed ? 'error' : 'unreachable', messageOf(e), vm.host);
    }
  }

  /**
   * Ask the guest to shut down, again every 10 s as Nova does (a guest still booting misses the
   * first ACPI event); past the deadline, power it off if allowed.
   */
  private async shutDown(vm: Vm, timeoutS: number, forceOff: boolean): Promise<MigrationOutcome> {
    const deadline = this.clock.now() + timeoutS * 1000;
    let asked = -Infinity;
    while (this.clock.now() < deadline) {
      if (this.clock.now() - asked >= SHUTDOWN_RETRY_MS) {
        asked = this.clock.now();
        await this.run(vm.host, [...VIRSH, 'shutdown', ...this.dom(vm)]);
      }
      await this.clock.sleep(POLL_MS);
      if ((await this.locate(vm, [vm.host])).found[0]?.state === 'shutoff') return { ok: true, bytes: 0, downtimeMs: 0 };
    }
    if (!forceOff) return failure('shutdown-refused', `${vm.name} ignored shutdown for ${timeoutS} s and the plan does not allow forcing it off; it keeps running on ${vm.host}`, vm.host);
    return this.powerOff(vm);
  }

  private async powerOff(vm: Vm): Promise<MigrationOutcome> {
    await this.run(vm.host, [...VIRSH, 'destroy', ...this.dom(vm)]);
    const now = await this.locate(vm, [vm.host]);
    return now.found[0]?.state === 'shutoff' ? { ok: true, bytes: 0, downtimeMs: 0 } : failure('error', `${vm.name} could not be powered off`, vm.host);
  }

  private async checksum(host: string, path: string): Promise<string> {
    return (await this.out(host, ['sha256sum', '--', path])).split(/\s+/)[0];
  }

  /**
   * Settle a migration whose controller died. A live job still running on the source goes on
   * without it (peer to peer, inside libvirtd): wait for it, abort it past waitMs. Then decide from
   * what each host holds: only the destination: finished (delete the source's leftover disks);
   * running on the destination and shut off on the source: a cold migration that only lacked
   * its clean-up, so finish it; otherwise undo the destination's side and start the guest again
   * on its source. Files are deleted only in folders the two hosts were shown not to share, and
   * only where no domain uses them. A host that does not answer, or a guest running on both, is
   * left untouched for a person, with the reason.
   */
  async recover(req: RecoverRequest): Promise<Recovery> {
    const { vm, destination } = req;
    const src = vm.host;
    const until = this.clock.now() + req.waitMs;
    for (let aborted = false; ;) {
      const job = await this.runWithin(src, [...VIRSH, 'domjobinfo', ...this.dom(vm)], LOCATE_TIMEOUT_MS).catch(() => undefined);
      const type = job?.code === 0 ? virsh.fields(job.stdout).get('Job type') : undefined;
      if (!type || type === 'None') break;
      if (!aborted && this.clock.now() > until) {
        aborted = true;
        await this.run(src, [...VIRSH, 'domjobabort', ...this.dom(vm)]).catch(() => undefined);
      }
      // An abort that does not take within a minute leaves the job to a person.
      if (aborted && this.clock.now() > until + 60_000) return { host: null, action: `a migration job of ${vm.name} still runs on ${src} after an abort; nothing was changed` };
      await this.clock.sleep(POLL_MS);
    }
    const where = await this.locate(vm, [src, destination]);
    if (where.unreachable.length > 0) {
      return { host: null, action: `${where.unreachable.join(' and ')} did not answer; nothing was changed: find ${vm.name} there before running again` };
    }
    // Which of its files the two hosts do not share: only those were copied, only those may be deleted.
    const plans = await this.copyPlans([vm], destination);
    const copy = typeof plans === 'string' ? [] : plans.get(vm.uuid)!.copy;
    // A disk copy the dead controller started goes on without it on the source: stop it first.
    const stopped = req.method === 'cold' ? await this.stopCopies(src, copy) : 0;
    const onSrc = where.found.find((f) => f.host === src);
    const onDst = where.found.find((f) => f.host === destination);
    const wasRunning = vm.state === 'running' || vm.state === 'paused';
    const restartSource = async () => {
      if (!wasRunning || !onSrc) return '';
      if (onSrc.state === 'shutoff') await this.run(src, [...VIRSH, 'start', ...this.dom(vm)]);
      if (onSrc.state === 'paused') await this.run(src, [...VIRSH, 'resume', ...this.dom(vm)]);
      return onSrc.state === 'running' ? '' : `, started again on ${src}`;
    };
    const kept = (r: { kept: string[]; why: string }, host: string) => (r.kept.length ? `; kept on ${host}: ${r.kept.join(', ')} (${r.why})` : '');
    if (onDst && !onSrc) {
      const r = await this.removeFiles(src, copy);
      return { host: destination, action: `the migration had finished: it runs on ${destination}; leftover disks on ${src} deleted${kept(r, src)}` };
    }
    if (onDst && onSrc) {
      if (onDst.state === 'running' && onSrc.state === 'shutoff') {
        await this.run(src, [...VIRSH, 'undefine', ...this.dom(vm)]);
        const r = await this.removeFiles(src, copy);
        return { host: destination, action: `completed: it already ran on ${destination}, so it was removed from ${src}${kept(r, src)}` };
      }
      if (onDst.state === 'running' && onSrc.state !== 'shutoff') {
        return { host: null, action: `runs on both ${src} (${onSrc.state}) and ${destination}; nothing was changed: stop one of them by hand` };
      }
      const debris = await this.dropDestination(vm, destination, onDst.state, copy);
      return { host: src, action: `rolled back: the unfinished copy on ${destination} was removed${await restartSource()}${debris}` };
    }
    if (onSrc) {
      const debris = await this.dropDestination(vm, destination, undefined, copy);
      const c = stopped ? `the copy still running on ${src} stopped, ` : '';
      return { host: src, action: `rolled back: ${c}any partial copy on ${destination} deleted${await restartSource()}${debris}` };
    }
    return { host: null, action: `on neither ${src} nor ${destination}` };
  }

  /** Stop the scp of these disk files still running on host (left by a controller that died); how many were. */
  private async stopCopies(host: string, paths: string[]): Promise<number> {
    let n = 0;
    for (const p of paths) {
      // Our own command line, as coldMigrate runs it: timeout N scp [options] -- PATH HOST:PATH.
      const pattern = `scp .*-- ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `;
      const r = await this.run(host, ['pkill', '-TERM', '-f', '--', pattern]).catch(() => undefined);
      if (r?.code === 0) n++;
    }
    return n;
  }

  private async readFence(host: string): Promise<Fence | undefined> {
    const r = await this.run(host, ['cat', FENCE_FILE]);
    if (r.code !== 0) return undefined;
    try {
      return JSON.parse(r.stdout) as Fence;
    } catch {
      return undefined;
    }
  }

  /** The fence file is created exclusively (noclobber), so two controllers cannot both take a free host. */
  async fence(host: string, fence: Fence | null, force = false): Promise<Outcome<object> & { holder?: Fence }> {
    try {
      if (!fence) {
        await this.out(host, ['rm', '-f', '--', FENCE_FILE]);
        return { ok: true };
      }
      const json = `${JSON.stringify(fence)}\n`;
      await this.out(host, ['mkdir', '-p', '--', FENCE_FILE.replace(/\/[^/]+$/, '')]);
      if ((await this.run(host, ['sh', '-c', 'set -C; cat > "$1"', 'sh', FENCE_FILE], json)).code === 0) return { ok: true };
      const holder = await this.readFence(host);
      if (holder && holder.plan !== fence.plan && !force) return { ok: false, reason: 'refused', detail: `${host} is held by another plan`, holder };
      const put = await this.run(host, ['sh', '-c', 'cat > "$1.tmp" && mv -f -- "$1.tmp" "$1"', 'sh', FENCE_FILE], json);
      return put.code === 0 ? { ok: true } : failure('error', `${host}: cannot write ${FENCE_FILE}: ${put.stderr.trim()}`, host);
    } catch (e) {
      return failure('unreachable', messageOf(e), host);
    }
  }

  async locate(vm: Vm, hosts: string[]): Promise<Location> {
    const loc: Location = { vm: vm.name, found: [], unreachable: [] };
    await Promise.all(hosts.map(async (h) => {
      try {
        // A partitioned host does not answer at all: give up on it after a while.
        const timer = new AbortController();
        const r = await Promise.race([
          this.run(h, [...VIRSH, 'domstate', ...this.dom(vm)]),
          this.clock.sleep(LOCATE_TIMEOUT_MS, timer.signal).then(() => Promise.reject(new Error('no answer'))),
        ]).finally(() => timer.abort());
        if (r.code === 0) loc.found.push({ host: h, state: virsh.stateOf(r.stdout.trim()) });
        else if (!/failed to get domain|Domain not found/i.test(r.stderr)) loc.unreachable.push(h);
      } catch {
        loc.unreachable.push(h);
      }
    }));
    return loc;
  }

  async close(): Promise<void> {
    await this.ssh.close();
  }
}

/** A remote command ran and failed: its host answered. */
class CommandFailed extends Error {
  constructor(readonly host: string, message: string) {
    super(message);
  }
}
