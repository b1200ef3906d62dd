/**
 * The libvirt driver: virsh on each host over SSH. Live migration is peer to peer, persistent,
 * undefining the source, copying storage when disks are local; its progress comes from the
 * migration job. Every outcome is decided by looking the domain up on both hosts afterwards,
 * never from virsh's message (peer-to-peer mode often hides the real error). A source's
 * leftover disk is deleted only once the guest is confirmed running on the destination.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { messageOf } from '../../errors.ts';
import { withDefaults } from '../../plan/defaults.ts';
import type { LibvirtFleet } from '../../plan/plan-types.ts';
import {
  failure, wallClock,
  type CheckResult, type Clock, type ColdRequest, type Driver, type Failure, type LiveRequest, type Location, type MigrationOutcome, type Outcome,
  type PreflightItem, type RecoverRequest, type Recovery,
} from '../driver.ts';
import type { Fence, Host, Inventory, Vm } from '../types.ts';
import { SshPool } from './ssh.ts';
import * as virsh from './virsh.ts';


/** virsh on the host's own system libvirtd (without -c, virsh probes URIs first: seconds per call). */
const VIRSH = ['virsh', '-c', 'qemu:///system'];
/** Milliseconds between two looks at a migration job. */
const POLL_MS = 1000;
/** How long virsh migrate may take to return after an abort before the driver stops waiting. */
const ABORT_GRACE_MS = 10_000;
/** Filesystems (as `stat -f` names them) whose files every host sees: disks there are shared. */
const SHARED_FS = new Set(['nfs', 'nfs4', 'cifs', 'smb2', 'ceph', 'fuse.glusterfs', 'gfs2', 'ocfs2', 'fuse.cephfs']);
/** How long a host may take to say where a domain is. */
const LOCATE_TIMEOUT_MS = 10_000;
/** How often a shutdown request is repeated while the guest has not stopped (Nova: 10 s). */
const SHUTDOWN_RETRY_MS = 10_000;
/** Where a host's fence is kept: it survives reboots until `evacuator clear` lifts it. */
const FENCE_FILE = '/var/lib/evacuator/fence.json';

export class LibvirtDriver implements Driver {
  readonly name = 'libvirt';
  readonly clock: Clock;
  private readonly ssh: SshPool;
  private readonly labels: Map<string, Record<string, string>>;
  /**
   * Local disk files per domain, from the last inventory: what a migration copies and what is
   * deleted from the host it left. A disk on shared storage is never copied or deleted.
   */
  private diskPaths = new Map<string, string[]>();
  /** Guest CPU per domain that names one, from the last inventory. */
  private cpus = new Map<string, { element: string; virtType: string }>();
  /** Domains whose migration job was aborted, with when. */
  private aborting = new Map<string, number>();

  private readonly config: LibvirtFleet;

  /** Defaults from the schema (withDefaults): each `!` is a field that has one; the file defaults are computed. */
  constructor(given: LibvirtFleet, origin?: number) {
    const config = withDefaults(given, 'LibvirtFleet');
    this.config = config;
    this.clock = wallClock(origin);
    this.ssh = new SshPool(new Map(config.hosts.map((h) => [h.name, { name: h.name, address: h.address ?? h.name, port: h.port! }])), {
      user: config.user!,
      identityFiles: config.identity_files,
      knownHostsFile: config.known_hosts ?? join(homedir(), '.ssh', 'known_hosts'),
      connectTimeoutMs: config.connect_timeout_s! * 1000,
    });
    this.labels = new Map(config.hosts.map((h) => [h.name, h.labels ?? {}]));
  }

  private async run(host: string, argv: string[], stdin?: string) {
    return this.ssh.exec(host, argv, stdin);
  }

  /** stdout of a command that must succeed, else an Error naming it. */
  private async out(host: string, argv: string[]): Promise<string> {
    const r = await this.run(host, argv);
    if (r.code !== 0) throw new Error(`${host}: ${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r.stdout;
  }

  async inventory(): Promise<Outcome<{ inventory: Inventory }>> {
    const inv: Inventory = { hosts: [], vms: [], unreachable: [] };
    await Promise.all(this.config.hosts.map(async ({ name }) => {
      try {
        const [node, caps, ver, pool, list, fence] = await Promise.all([
          this.out(name, [...VIRSH, 'nodeinfo']), this.out(name, [...VIRSH, 'capabilities']), this.out(name, [...VIRSH, 'version']),
          this.run(name, [...VIRSH, 'pool-info', '--bytes', 'default']), this.out(name, [...VIRSH, 'list', '--all', '--name']),
          this.readFence(name),
        ]);
        const n = virsh.fields(node);
        const c = virsh.capabilities(caps);
        const host: Host = {
          name, uuid: c.uuid, cpuModel: c.cpuModel, hypervisor: virsh.version(ver), labels: this.labels.get(name) ?? {},
          capacity: {
            vcpu: Number(n.get('CPU(s)') ?? 0),
            memory_mib: Math.floor(virsh.bytesOf(n.get('Memory size')) / 2 ** 20),
            disk_gib: pool.code === 0 ? virsh.bytesOf(virsh.fields(pool.stdout).get('Capacity')) / 2 ** 30 : 0,
          },
          ...(fence ? { fence } : {}),
        };
        inv.hosts.push(host);
        for (const dom of list.split('\n').map((l) => l.trim()).filter(Boolean)) inv.vms.push(await this.domain(name, dom));
      } catch (e) {
        inv.unreachable.push({ host: name, detail: messageOf(e) });
      }
    }));
    inv.hosts.sort((a, b) => a.name.localeCompare(b.name));
    inv.vms.sort((a, b) => a.name.localeCompare(b.name));
    return { ok: true, inventory: inv };
  }

  private async domain(host: string, name: string): Promise<Vm> {
    const [info, blk, xml] = await Promise.all([
      this.out(host, [...VIRSH, 'dominfo', name]), this.out(host, [...VIRSH, 'domblklist', '--details', name]), this.out(host, [...VIRSH, 'dumpxml', name]),
    ]);
    const f = virsh.fields(info);
    const files = virsh.disks(blk);
    let diskBytes = 0;
    const local: string[] = [];
    for (const d of files) {
      const r = await this.run(host, [...VIRSH, 'domblkinfo', name, d.target]);
      if (r.code === 0) diskBytes += virsh.bytesOf(virsh.fields(r.stdout).get('Capacity'));
      // A disk on a network filesystem is there on every host: the migration need not copy it.
      const fs = await this.run(host, ['stat', '-f', '-c', '%T', '--', d.path]);
      if (!SHARED_FS.has(fs.stdout.trim())) local.push(d.path);
    }
    this.diskPaths.set(name, local);
    const cpu = virsh.guestCpu(xml);
    if (cpu) this.cpus.set(name, cpu);
    else this.cpus.delete(name);
    return {
      name, uuid: f.get('UUID') ?? name, host, state: virsh.stateOf(f.get('State') ?? ''),
      resources: { vcpu: Number(f.get('CPU(s)') ?? 1), memory_mib: virsh.bytesOf(f.get('Max memory')) / 2 ** 20, disk_gib: diskBytes / 2 ** 30 },
      // Any disk on a host's own filesystem makes the VM local: a live migration must copy it.
      storage: local.length > 0 ? 'local' : 'shared',
      cpuModel: cpu?.model ?? 'qemu64',
      disks: local,
    };
  }

  /**
   * libvirt's own checks, live: the source itself reaches the destination's libvirtd (peer to
   * peer; asked once per pair of hosts), and libvirt's CPU comparison on the destination, which
   * replaces the model table's answer. The generic checks come from discovery (preflight/).
   */
  async preflight(items: PreflightItem[]): Promise<CheckResult[][]> {
    const peers = new Map<string, Promise<CheckResult>>();
    const peer = (source: string, destination: string) => {
      const key = `${source}\n${destination}`;
      let p = peers.get(key);
      if (!p) {
        p = this.run(source, ['virsh', '-c', `qemu+ssh://${destination}/system`, 'hostname'])
          .catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }))
          .then((r): CheckResult => ({
            check: 'peer', ok: r.code === 0,
            detail: r.code === 0 ? `${source} reaches ${destination}'s libvirtd` : `${source} cannot reach ${destination}'s libvirtd: ${r.stderr.trim().split('\n').at(-1)}`,
          }));
        peers.set(key, p);
      }
      return p;
    };
    return Promise.all(items.map(async ({ vm, destination }) => {
      const [p, cpu] = await Promise.all([peer(vm.host, destination), this.compareCpu(vm, destination)]);
      return cpu ? [p, cpu] : [p];
    }));
  }

  /**
   * Ask the destination's libvirt whether it can provide the guest's CPU (`virsh
   * hypervisor-cpu-compare` with the domain's virtualization type), from the CPU element the
   * inventory read. A domain without one gets QEMU's baseline model: undefined, the table's
   * answer stands.
   */
  private async compareCpu(vm: Vm, destination: string): Promise<CheckResult | undefined> {
    const cpu = this.cpus.get(vm.name);
    if (!cpu) return undefined;
    const r = await this.run(destination, [...VIRSH, 'hypervisor-cpu-compare', '--virttype', cpu.virtType, '/dev/stdin'], cpu.element);
    const said = (r.stdout.trim() || r.stderr.trim()).split('\n').at(-1) ?? '';
    const ok = r.code === 0 && /identical|superset/.test(said);
    return { check: 'cpu', ok, detail: `libvirt on ${destination}: ${said.replace(/\/dev\/stdin/g, `${vm.name}'s definition`)}` };
  }

  async liveMigrate(req: LiveRequest): Promise<MigrationOutcome> {
    const { vm, destination } = req;
    const local = vm.storage === 'local';
    const argv = [...VIRSH, 'migrate', '--live', '--persistent', '--undefinesource', '--p2p',
      ...(local ? ['--copy-storage-all'] : []),
      ...(req.autoConverge ? ['--auto-converge'] : []),
      ...(req.postCopy ? ['--postcopy', '--postcopy-after-precopy'] : []),
      ...(req.bandwidthMibps ? ['--bandwidth', String(Math.max(1, Math.round(req.bandwidthMibps)))] : []),
      vm.name, `qemu+ssh://${destination}/system`];
    this.aborting.delete(vm.name);
    let finished = false;
    const migration = this.run(vm.host, argv).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message })).finally(() => (finished = true));
    // Watch the job on the source; set the downtime limit once the job exists.
    let limitSet = false;
    while (!finished) {
      const tick = new AbortController();
      await Promise.race([migration, this.clock.sleep(POLL_MS, tick.signal)]);
      tick.abort();
      if (finished) break;
      // A partitioned destination can hang virsh for minutes even after the abort: stop waiting
      // and decide from where the guest is (it counts as on its source until proven otherwise).
      const abortedAt = this.aborting.get(vm.name);
      if (abortedAt !== undefined && this.clock.now() - abortedAt > ABORT_GRACE_MS) {
        return this.settle(vm, destination, `virsh migrate did not return ${ABORT_GRACE_MS / 1000} s after the abort`, true);
      }
      if (!limitSet) limitSet = (await this.run(vm.host, [...VIRSH, 'migrate-setmaxdowntime', vm.name, String(req.maxDowntimeMs)]).catch(() => ({ code: -1 }))).code === 0;
      const job = await this.run(vm.host, [...VIRSH, 'domjobinfo', vm.name]).catch(() => undefined);
      if (job?.code === 0) {
        const f = virsh.fields(job.stdout);
        if (f.get('Job type') === 'Unbounded') {
          req.onProgress({ vm: vm.name, phase: 'memory', sentBytes: virsh.bytesOf(f.get('Data processed')) || 0, remainingBytes: virsh.bytesOf(f.get('Data remaining')) || 0, rateBps: virsh.bytesOf(f.get('Memory bandwidth')?.replace('/s', '')) || 0 });
        }
      }
    }
    const result = await migration;
    return this.settle(vm, destination, result.stderr, this.aborting.has(vm.name));
  }

  /** Decide a live migration's outcome from where the domain is now. */
  private async settle(vm: Vm, destination: string, stderr: string, aborted: boolean): Promise<MigrationOutcome> {
    const where = await this.locate(vm, [vm.host, destination]);
    const onDest = where.found.find((f) => f.host === destination);
    const onSource = where.found.find((f) => f.host === vm.host);
    const message = stderr.trim().split('\n').at(-1) ?? '';
    if (onDest?.state === 'running' && !onSource) {
      const done = await this.run(destination, [...VIRSH, 'domjobinfo', '--completed', vm.name]).catch(() => undefined);
      const f = virsh.fields(done?.stdout ?? '');
      // Only now, with the guest running on the destination and gone from the source, delete what it left there.
      for (const path of this.diskPaths.get(vm.name) ?? []) await this.deleteDisk(vm.host, path).catch(() => undefined);
      return { ok: true, bytes: virsh.bytesOf(f.get('Data processed')) || 0, downtimeMs: Number(/(\d+)/.exec(f.get('Total downtime') ?? '')?.[1] ?? 0) };
    }
    if (where.unreachable.includes(destination)) return failure('unreachable', `${destination} does not answer: ${message}`, destination);
    if (where.unreachable.includes(vm.host)) return failure('unreachable', `${vm.host} does not answer: ${message}`, vm.host);
    if (onSource) return failure(aborted ? 'aborted' : 'error', message || 'migration failed; the guest stays on its source', aborted ? undefined : destination);
    return failure('not-found', `${vm.name} is on neither ${vm.host} nor ${destination}: ${message}`, vm.host);
  }


  async abort(vm: Vm): Promise<Outcome<object>> {
    this.aborting.set(vm.name, this.clock.now());
    const r = await this.run(vm.host, [...VIRSH, 'domjobabort', vm.name]).catch((e: Error) => ({ code: -1, stderr: e.message }));
    return r.code === 0 ? { ok: true } : failure('error', r.stderr.trim(), vm.host);
  }

  /**
   * Shut down (forced off only if allowed), copy each disk host to host with a checksum compared
   * on both ends, define the inactive definition on the destination and start it; only once it
   * runs there, undefine it on the source and delete its disks. Any failure before that undoes
   * what the destination got and starts the guest again on its source.
   */
  async coldMigrate(req: ColdRequest): Promise<MigrationOutcome> {
    const { vm, destination } = req;
    const src = vm.host;
    const t0 = this.clock.now();
    const state = await this.locate(vm, [src]);
    const was = state.found.find((f) => f.host === src)?.state;
    if (!was) return failure(state.unreachable.length ? 'unreachable' : 'not-found', `${vm.name} is not on ${src}`, src);
    const paths = this.diskPaths.get(vm.name) ?? [];
    req.onProgress({ vm: vm.name, phase: 'shutdown', sentBytes: 0, remainingBytes: 0, rateBps: 0 });
    if (was !== 'shutoff') {
      const off = await this.shutDown(vm, req.shutdownTimeoutS, req.forceOff);
      if (!off.ok) return off;
    }
    const copied: string[] = [];
    let defined = false;
    const undo = async (reason: Failure['reason'], detail: string, host?: string): Promise<MigrationOutcome> => {
      if (defined) await this.run(destination, [...VIRSH, 'undefine', vm.name]).catch(() => undefined);
      for (const p of copied) await this.deleteDisk(destination, p).catch(() => undefined);
      if (was === 'running' || was === 'paused') await this.run(src, [...VIRSH, 'start', vm.name]).catch(() => undefined);
      return failure(reason, `${detail}; ${vm.name} is back on ${src}`, host);
    };
    let bytes = 0;
    try {
      for (const path of paths) {
        const before = await this.checksum(src, path);
        req.onProgress({ vm: vm.name, phase: 'copy', sentBytes: bytes, remainingBytes: 0, rateBps: 0 });
        copied.push(path);
        // scp -l takes Kbit/s: the plan's bandwidth cap holds for the copy too.
        const limit = req.bandwidthMibps ? ['-l', String(Math.max(1, Math.round(req.bandwidthMibps * 8 * 1024)))] : [];
        const cp = await this.run(src, ['scp', '-q', '-p', ...limit, '--', path, `${destination}:${path}`]);
        if (cp.code !== 0) return await undo('error', `copying ${path} to ${destination} failed: ${cp.stderr.trim()}`, destination);
        const after = await this.checksum(destination, path);
        if (after !== before) return await undo('error', `${path} differs after the copy (sha256 ${before} on ${src}, ${after} on ${destination})`, destination);
        bytes += Number((await this.out(destination, ['stat', '-c', '%s', '--', path])).trim());
      }
      await this.run(destination, [...VIRSH, 'pool-refresh', 'default']);
      const xml = await this.out(src, [...VIRSH, 'dumpxml', '--inactive', '--migratable', vm.name]);
      const def = await this.run(destination, [...VIRSH, 'define', '/dev/stdin'], xml);
      if (def.code !== 0) return await undo('error', `define on ${destination} failed: ${def.stderr.trim()}`, destination);
      defined = true;
      req.onProgress({ vm: vm.name, phase: 'boot', sentBytes: bytes, remainingBytes: 0, rateBps: 0 });
      if (was === 'running' || was === 'paused') {
        const start = await this.run(destination, [...VIRSH, 'start', vm.name]);
        const now = await this.locate(vm, [destination]);
        if (start.code !== 0 || now.found[0]?.state !== 'running') return await undo('error', `start on ${destination} failed: ${start.stderr.trim()}`, destination);
      }
    } catch (e) {
      return undo('unreachable', messageOf(e));
    }
    // The destination runs it: now, and only now, remove it from the source.
    req.onProgress({ vm: vm.name, phase: 'cleanup', sentBytes: bytes, remainingBytes: 0, rateBps: 0 });
    await this.run(src, [...VIRSH, 'undefine', vm.name]);
    for (const p of paths) await this.deleteDisk(src, p);
    return { ok: true, bytes, downtimeMs: this.clock.now() - t0 };
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
        await this.run(vm.host, [...VIRSH, 'shutdown', vm.name]);
      }
      await this.clock.sleep(POLL_MS);
      if ((await this.locate(vm, [vm.host])).found[0]?.state === 'shutoff') return { ok: true, bytes: 0, downtimeMs: 0 };
    }
    if (!forceOff) return failure('shutdown-refused', `${vm.name} ignored shutdown for ${timeoutS} s and the plan does not allow forcing it off; it keeps running on ${vm.host}`, vm.host);
    await this.run(vm.host, [...VIRSH, 'destroy', vm.name]);
    const now = await this.locate(vm, [vm.host]);
    return now.found[0]?.state === 'shutoff' ? { ok: true, bytes: 0, downtimeMs: 0 } : failure('error', `${vm.name} could not be powered off`, vm.host);
  }

  /**
   * Delete a disk through its storage pool, so the pool does not keep listing it (a stale entry
   * makes a later migration back to this host fail: libvirt skips creating a disk it believes
   * exists). A file in no pool is removed directly.
   */
  private async deleteDisk(host: string, path: string): Promise<void> {
    const r = await this.run(host, [...VIRSH, 'vol-delete', path]);
    if (r.code !== 0) await this.run(host, ['rm', '-f', '--', path]);
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
   * on its source. A host that does not answer, or a guest running on both, is left untouched
   * for a person, with the reason.
   */
  async recover(req: RecoverRequest): Promise<Recovery> {
    const { vm, destination } = req;
    const src = vm.host;
    const paths = vm.disks ?? this.diskPaths.get(vm.name) ?? [];
    const until = this.clock.now() + req.waitMs;
    for (let aborted = false; ;) {
      const job = await this.run(src, [...VIRSH, 'domjobinfo', vm.name]).catch(() => undefined);
      const type = job?.code === 0 ? virsh.fields(job.stdout).get('Job type') : undefined;
      if (!type || type === 'None') break;
      if (!aborted && this.clock.now() > until) {
        aborted = true;
        await this.run(src, [...VIRSH, 'domjobabort', vm.name]).catch(() => undefined);
      }
      await this.clock.sleep(POLL_MS);
    }
    // A disk copy the dead controller started goes on without it on the source: stop it first.
    const stopped = req.method === 'cold' ? await this.stopCopies(src, paths) : 0;
    const where = await this.locate(vm, [src, destination]);
    if (where.unreachable.length > 0) {
      return { host: null, action: `${where.unreachable.join(' and ')} did not answer; nothing was changed: find ${vm.name} there before running again` };
    }
    const onSrc = where.found.find((f) => f.host === src);
    const onDst = where.found.find((f) => f.host === destination);
    const wasRunning = vm.state === 'running' || vm.state === 'paused';
    const dropDestination = async () => {
      if (onDst?.state === 'running' || onDst?.state === 'paused') await this.run(destination, [...VIRSH, 'destroy', vm.name]);
      if (onDst) await this.run(destination, [...VIRSH, 'undefine', vm.name]);
      for (const p of paths) await this.deleteDisk(destination, p).catch(() => undefined);
    };
    const restartSource = async () => {
      if (!wasRunning || !onSrc) return '';
      if (onSrc.state === 'shutoff') await this.run(src, [...VIRSH, 'start', vm.name]);
      if (onSrc.state === 'paused') await this.run(src, [...VIRSH, 'resume', vm.name]);
      return onSrc.state === 'running' ? '' : `, started again on ${src}`;
    };
    if (onDst && !onSrc) {
      for (const p of paths) await this.deleteDisk(src, p).catch(() => undefined);
      return { host: destination, action: `the migration had finished: it runs on ${destination}; leftover disks on ${src} deleted` };
    }
    if (onDst && onSrc) {
      if (onDst.state === 'running' && onSrc.state === 'shutoff') {
        await this.run(src, [...VIRSH, 'undefine', vm.name]);
        for (const p of paths) await this.deleteDisk(src, p);
        return { host: destination, action: `completed: it already ran on ${destination}, so it was removed from ${src}` };
      }
      if (onDst.state === 'running' && onSrc.state !== 'shutoff') {
        return { host: null, action: `runs on both ${src} (${onSrc.state}) and ${destination}; nothing was changed: stop one of them by hand` };
      }
      await dropDestination();
      return { host: src, action: `rolled back: the unfinished copy on ${destination} was removed${await restartSource()}` };
    }
    if (onSrc) {
      await dropDestination();
      const copy = stopped ? `the copy still running on ${src} stopped, ` : '';
      return { host: src, action: `rolled back: ${copy}any partial copy on ${destination} deleted${await restartSource()}` };
    }
    return { host: null, action: `on neither ${src} nor ${destination}` };
  }

  /** Stop the scp of these disk files still running on host (left by a controller that died); how many were. */
  private async stopCopies(host: string, paths: string[]): Promise<number> {
    let n = 0;
    for (const p of paths) {
      // Our own command line, as coldMigrate runs it: scp [options] -- PATH HOST:PATH.
      const pattern = `^scp .*-- ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `;
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
          this.run(h, [...VIRSH, 'domstate', vm.name]),
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
