/**
 * The sim driver: an embedded fleet whose migrations follow the pre-copy model in virtual time.
 * Live: set-up, local disks copied once, memory rounds that resend what the guest dirtied, and a
 * stop-and-copy once the remainder fits in the downtime limit at the current rate. Cold: shutdown,
 * disk copy, define and boot on the destination, then removal from the source.
 *
 * With a state file, the simulated fleet outlives the process: every change of a domain (and
 * the clock, the hosts that died, the fences) is written at once, atomically, so a run killed at
 * any moment finds the fleet as it was, as a real fleet would be. A migration job dies with the
 * process, like a QEMU job whose connection dropped.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { EvacError, userError } from '../../errors.ts';
import { lockFile } from '../../process.ts';
import { schemaDefault, withDefaults } from '../../plan/defaults.ts';
import type { SimFleet, SimVm } from '../../plan/plan-types.ts';
import type {
  CheckResult, ColdRequest, Driver, Failure, LiveRequest, MaintainStep, Location, MigrationOutcome, Outcome, PreflightItem, RecoverRequest, Recovery,
} from '../driver.ts';
import { MiB, GiB } from '../precopy.ts';
import type { Fence, Host, Inventory, Vm } from '../types.ts';
import { Engine, type Flow } from './engine.ts';
import { simFleet } from './fleet.ts';
import { readState, removeDeadTemporaries, StateWriter, type Change, type SavedFleet, type SimDomain } from './state.ts';

/** A VM whose host is not in the fleet (a plan built in code) gets the default host CPU. */
const HOST_CPU_MODEL = schemaDefault<string>('/definitions/SimHost/properties/cpu_model');

/** Fixed costs, ms: from the testbed's measurements, rounded. */
export const SIM_TIMES = { setupMs: 1500, resumeMs: 50, abortMs: 1500, shutdownMs: 15000, defineMs: 500, bootMs: 20000 };

/** Where the simulated fleet keeps its state between processes. */
export interface SimState {
  /** The file; every change is written to it at once (state.ts: a snapshot and change lines). */
  path: string;
  /** Start from the file when it exists (a resumed run, or a fleet shared between plans). */
  restore: boolean;
  /** The clock starts no earlier than this (a resume: the journal's last moment, ahead of the file's). */
  since?: number;
  /** Only read: no lock taken, nothing saved. */
  readOnly?: boolean;
  /** A resume: when the journal's last change to the fleet ended (a state file older than that is refused). */
  changedUntil?: number;
}

interface Job {
  flow?: Flow;
  aborted: boolean;
  switchingOver: boolean;
}

export class SimDriver implements Driver {
  readonly name = 'sim';
  /** The model's own fixed costs: job set-up and the resume on the destination. */
  readonly setupS = (SIM_TIMES.setupMs + SIM_TIMES.resumeMs) / 1000;
  readonly coldS = { shutdown: SIM_TIMES.shutdownMs / 1000, boot: (SIM_TIMES.defineMs + SIM_TIMES.bootMs) / 1000 };
  readonly clock: Engine;
  private hosts = new Map<string, Host>();
  private domains = new Map<string, SimDomain>();
  private jobs = new Map<string, Job>();
  private down = new Set<string>();
  private failing = new Set<string>();
  private streamBps: number;
  get streamMibps(): number {
    return this.streamBps / MiB;
  }
  private unlock: () => void = () => {};
  private writer: StateWriter | undefined;
  /** When this process last changed the fleet (the clock), for the snapshot written at close. */
  private changedAt = 0;

  /** Every default comes from the schema (withDefaults, simFleet): each `!` is a field that has one. */
  constructor(given: SimFleet, private readonly state?: SimState) {
    const sim = withDefaults(given, 'SimFleet');
    const { hosts, vms } = simFleet(sim);
    // A host's own NIC, else the fleet's.
    const nic = new Map(hosts.map((h) => [h.name, (h.nic_mibps ?? sim.nic_mibps!) * MiB]));
    this.clock = new Engine((host) => nic.get(host) ?? sim.nic_mibps! * MiB);
    this.streamBps = sim.stream_mibps! * MiB;
    for (const h of hosts) {
      this.hosts.set(h.name, {
        name: h.name,
        uuid: stableUuid(h.name),
        cpuModel: h.cpu_model!,
        hypervisor: { type: 'QEMU', version: h.hypervisor_version! },
        capacity: { ...h.resources, vcpu: h.vcpu, memory_mib: h.memory_mib, disk_gib: h.disk_gib },
        labels: h.labels ?? {},
        nicMibps: nic.get(h.name)! / MiB,
      });
    }
    for (const v of vms) this.domains.set(v.name, this.domain(v));
    // One process at a time writes a state file (two plans may share one): held from open to close.
    if (state && !state.readOnly) {
      mkdirSync(dirname(state.path), { recursive: true });
      this.unlock = lockFile(`${state.path}.lock`, (h) => new EvacError(`the simulated fleet's state file ${state.path} is in use by pid ${h.pid} on ${h.controller} (since ${h.at})`, 'held', [],
        `let that run end (or stop it) before another plan changes the same fleet`), `another process is opening the simulated fleet ${state.path} at the same time`);
      // Holding the lock: a snapshot a killed process left half-written under its temporary name is debris.
      removeDeadTemporaries(state.path);
    }
    try {
      if (state?.restore && existsSync(state.path)) this.load(state.path);
    } catch (e) {
      this.unlock();
      throw e;
    }
    if (state?.since !== undefined) this.clock.resumeAt(state.since);
    for (const f of sim.faults ?? []) {
      if (f.kind === 'unreachable' && f.host) this.down.add(f.host);
      if (f.kind === 'migration_error' && f.vm) this.failing.add(f.vm);
      if (f.kind === 'crash' && f.host && (f.at_s ?? 0) * 1000 >= this.clock.now()) {
        const host = f.host;
        this.clock.at((f.at_s ?? 0) * 1000, () => this.crash(host), true);
      }
    }
    // Written at the first change, not here: a run refused before it changed anything leaves no file.
  }

  private load(path: string): void {
    // A regular file of bounded size (not /dev/zero, not a folder), as every input is read.
    const { saved, bytes, snapshotBytes } = readState(path);
    if (this.state?.changedUntil !== undefined && saved.t + 1 < this.state.changedUntil) {
      throw userError(`${path} is older than the journal it would resume (it ends at ${Math.round(saved.t / 1000)} s, the journal's last change at ${Math.round(this.state.changedUntil / 1000)} s): it was restored from an earlier copy`, [],
        'put back the state file the killed run left; resuming from an older one would move VMs twice');
    }
    this.hosts = new Map(saved.hosts.map((h) => [h.name, h]));
    this.domains = new Map(saved.domains.map((d) => [d.vm.name, d]));
    this.down = new Set(saved.down);
    this.clock.resumeAt(saved.t);
    // This process holds the lock: its changes go on the end of the file as it is.
    if (this.state && !this.state.readOnly && bytes > 0) {
      this.writer = new StateWriter(path);
      this.writer.adopt(bytes, snapshotBytes);
    }
  }

  /** The fleet as it is now, whole. */
  private snapshot(t = this.clock.now()): SavedFleet {
    return { version: 1, t, hosts: [...this.hosts.values()], domains: [...this.domains.values()], down: [...this.down] };
  }

  /**
   * Write a change at once: the domains and hosts it touched. The first change of a process that
   * did not start from the file writes the whole fleet; later ones add a line, and the file is
   * compacted when its lines outgrow its snapshot.
   */
  private save(touched: Omit<Change, 't'> = {}): void {
    if (!this.state || this.state.readOnly) return;
    this.writer ??= new StateWriter(this.state.path);
    this.changedAt = this.clock.now();
    // The first change (or one on a file of the first format) writes the whole fleet; later ones add a line, and the file is rewritten whole when its lines outgrow its snapshot.
    if (!this.writer.open || this.writer.append({ t: this.changedAt, ...touched })) this.writer.snapshot(this.snapshot());
  }

  private domain(v: SimVm): SimDomain {
    const host = this.hosts.get(v.host);
    return {
      vm: {
        name: v.name,
        uuid: stableUuid(`vm:${v.name}`),
        host: v.host,
        state: v.state!,
        resources: { ...v.resources, vcpu: v.vcpu, memory_mib: v.memory_mib, disk_gib: v.disk_gib! },
        storage: v.storage!,
        // The guest's own CPU model, else its host's.
        cpuModel: v.cpu_model ?? host?.cpuModel ?? HOST_CPU_MODEL,
        ...(v.anti_affinity ? { antiAffinity: v.anti_affinity } : {}),
        ...(v.affinity ? { affinity: v.affinity } : {}),
        // Resident memory defaults to all of it.
        residentMib: v.resident_mib ?? v.memory_mib,
        dirtyMibps: v.dirty_mibps!,
      },
      residentBytes: (v.resident_mib ?? v.memory_mib) * MiB,
      dirtyBps: v.dirty_mibps! * MiB,
      ignoresShutdown: v.ignores_shutdown!,
    };
  }

  /** A host dies: its flows stop, its guests are gone until it comes back. */
  crash(host: string): void {
    this.down.add(host);
    for (const d of this.domains.values()) if (d.vm.host === host) d.vm.state = 'crashed';
    for (const f of this.clock.flowsOf(host)) this.clock.cancel(f);
    this.save({ domains: [...this.domains.values()].filter((d) => d.vm.host === host), down: [...this.down] });
  }

  async inventory(): Promise<Outcome<{ inventory: Inventory }>> {
    const hosts = [...this.hosts.values()].filter((h) => !this.down.has(h.name));
    const vms = [...this.domains.values()].map((d) => ({ ...d.vm, resources: { ...d.vm.resources } }))
      .filter((vm) => !this.down.has(vm.host));
    const unreachable = [...this.down].filter((h) => this.hosts.has(h))
      .map((host) => ({ host, detail: 'no answer (simulated: host unreachable)' }));
    return { ok: true, inventory: { hosts: structuredClone(hosts), vms, unreachable } };
  }

  /** The simulator's own check: both hosts still answer (the generic checks are preflight/'s). */
  async preflight(items: PreflightItem[]): Promise<CheckResult[][]> {
    return items.map(({ vm, destination }) => {
      const down = [vm.host, destination].filter((h) => !this.hosts.has(h) || this.down.has(h));
      return down.length > 0
        ? [{ check: 'reachable', ok: false, detail: `no answer from ${down.join(', ')}` }]
        : [{ check: 'peer', ok: true, detail: `${vm.host} reaches ${destination}` }];
    });
  }

  async liveMigrate(req: LiveRequest): Promise<MigrationOutcome> {
    const d = this.domains.get(req.vm.name);
    const bad = this.precondition(d, req.vm, req.destination, ['running', 'paused']);
    if (bad) return bad;
    const dom = d!;
    const src = dom.vm.host;
    const dst = req.destination;
    const job: Job = { aborted: false, switchingOver: false };
    this.jobs.set(dom.vm.name, job);
    try {
      const cap = Math.min(this.streamBps, (req.bandwidthMibps ?? Infinity) * MiB);
      const report = (phase: 'disk' | 'memory', round: number, remaining: number, rate: number) =>
        req.onProgress({ vm: dom.vm.name, phase, round, sentBytes: sent, remainingBytes: remaining, rateBps: rate });
      let sent = 0;
      await this.clock.sleep(SIM_TIMES.setupMs);
      const setupFailure = this.broken(src, dst, job);
      if (setupFailure) return setupFailure;
      if (this.failing.has(dom.vm.name)) {
        return { ok: false, reason: 'error', detail: 'simulated: migration job failed on the destination', host: dst, bytes: 0 };
      }
      if (dom.vm.storage === 'local') {
        const diskBytes = (dom.vm.resources.disk_gib ?? 0) * GiB;
        report('disk', 0, diskBytes, 0);
        const r = await this.send(job, src, dst, diskBytes, cap);
        if (r !== 'done') return { ...this.broken(src, dst, job)!, bytes: sent };
        sent += diskBytes;
      }
      let pending = dom.residentBytes;
      // A paused guest stays paused where it lands, as libvirt and Nova keep it.
      const before = dom.vm.state;
      for (let round = 0; ; round++) {
        const t0 = this.clock.now();
        const r = await this.send(job, src, dst, pending, cap);
        if (r !== 'done') return { ...this.broken(src, dst, job)!, bytes: sent };
        sent += pending;
        const seconds = Math.max((this.clock.now() - t0) / 1000, 1e-6);
        const rate = pending / seconds;
        const dirtied = Math.min(dom.residentBytes, dom.dirtyBps * seconds);
        report('memory', round, dirtied, rate);
        if (dirtied <= (rate * req.maxDowntimeMs) / 1000) {
          job.switchingOver = true;
          dom.vm.state = 'paused';
          const t1 = this.clock.now();
          const last = await this.send({ aborted: false, switchingOver: true }, src, dst, dirtied, cap);
          if (last !== 'done') {
            dom.vm.state = this.down.has(src) ? 'crashed' : before;
            return { ...this.broken(src, dst, job)!, bytes: sent };
          }
          await this.clock.sleep(SIM_TIMES.resumeMs);
          sent += dirtied;
          dom.vm.host = dst;
          dom.vm.state = before;
          this.save({ domains: [dom] });
          return { ok: true, bytes: sent, downtimeMs: this.clock.now() - t1, rounds: round + 1 };
        }
        pending = dirtied;
      }
    } finally {
      this.jobs.delete(dom.vm.name);
    }
  }

  async abort(vm: Vm): Promise<Outcome<object>> {
    const job = this.jobs.get(vm.name);
    if (!job) return { ok: false, reason: 'not-found', detail: `no migration of ${vm.name} in flight` };
    if (job.switchingOver) return { ok: false, reason: 'refused', detail: 'switch-over already under way' };
    await this.clock.sleep(SIM_TIMES.abortMs);
    job.aborted = true;
    if (job.flow) this.clock.cancel(job.flow);
    return { ok: true };
  }

  async coldMigrate(req: ColdRequest): Promise<MigrationOutcome> {
    const d = this.domains.get(req.vm.name);
    const bad = this.precondition(d, req.vm, req.destination, ['running', 'paused', 'shutoff']);
    if (bad) return bad;
    const dom = d!;
    // A job like a live one, so a recovery in this process (a driver call that hung) can stop it.
    const job: Job = { aborted: false, switchingOver: false };
    this.jobs.set(dom.vm.name, job);
    try {
      return await this.cold(req, dom, job);
    } finally {
      if (this.jobs.get(dom.vm.name) === job) this.jobs.delete(dom.vm.name);
    }
  }

  private async cold(req: ColdRequest, dom: SimDomain, job: Job): Promise<MigrationOutcome> {
    const src = dom.vm.host;
    const dst = req.destination;
    const t0 = this.clock.now();
    const wasRunning = dom.vm.state !== 'shutoff';
    const stopped = () => ({ ok: false as const, reason: 'aborted' as const, detail: 'cold migration stopped by a recovery; the VM stays on its source', bytes: 0 });
    const progress = (phase: 'shutdown' | 'copy' | 'boot' | 'cleanup', sent: number, remaining: number) =>
      req.onProgress({ vm: dom.vm.name, phase, sentBytes: sent, remainingBytes: remaining, rateBps: 0 });
    if (wasRunning) {
      progress('shutdown', 0, 0);
      if (dom.ignoresShutdown) {
        await this.clock.sleep(req.shutdownTimeoutS * 1000);
        if (!req.forceOff) {
          return { ok: false, reason: 'shutdown-refused', detail: `guest ignored shutdown for ${req.shutdownTimeoutS} s; force_off is not allowed, so it was left running`, bytes: 0 };
        }
      } else {
        await this.clock.sleep(SIM_TIMES.shutdownMs);
      }
      if (job.aborted) return stopped();
      if (this.down.has(src)) return this.unreachable(src, 0);
      dom.vm.state = 'shutoff';
      this.save({ domains: [dom] });
    }
    // Roll back: the source copy is untouched; drop the destination's and start it again where it was.
    const rollBack = (host: string, bytes: number) => {
      dom.copy = undefined;
      if (!this.down.has(src) && wasRunning) dom.vm.state = 'running';
      this.save({ domains: [dom] });
      return this.unreachable(host, bytes);
    };
    const diskBytes = dom.vm.storage === 'local' ? (dom.vm.resources.disk_gib ?? 0) * GiB : 0;
    dom.copy = { host: dst, phase: 'copying' };
    this.save({ domains: [dom] });
    progress('copy', 0, diskBytes);
    const cap = Math.min(this.streamBps, (req.bandwidthMibps ?? Infinity) * MiB);
    const copied = await this.send(job, src, dst, diskBytes, cap);
    if (job.aborted) return stopped();
    if (copied !== 'done' || this.down.has(dst)) return rollBack(this.down.has(dst) ? dst : src, 0);
    progress('boot', diskBytes, 0);
    await this.clock.sleep(SIM_TIMES.defineMs + SIM_TIMES.bootMs);
    if (job.aborted) return stopped();
    if (this.down.has(dst)) return rollBack(dst, diskBytes);
    dom.copy = { host: dst, phase: 'running' };
    this.save({ domains: [dom] });
    // Verified running on the destination; only now remove it from the source.
    progress('cleanup', diskBytes, 0);
    this.finishCopy(dom, wasRunning);
    return { ok: true, bytes: diskBytes, downtimeMs: this.clock.now() - t0 };
  }

  /** The destination's copy runs: it becomes the domain, the source's is removed. */
  private finishCopy(dom: SimDomain, running: boolean): void {
    dom.vm.host = dom.copy!.host;
    dom.vm.state = running ? 'running' : 'shutoff';
    dom.copy = undefined;
    this.save({ domains: [dom] });
  }

  async recover(req: RecoverRequest): Promise<Recovery> {
    const dom = this.domains.get(req.vm.name);
    if (!dom) return { host: null, action: 'no such domain on any host' };
    // A job of this process still going (its driver call hung): stopped, as a killed process's would be.
    const job = this.jobs.get(req.vm.name);
    if (job && !job.switchingOver) {
      job.aborted = true;
      if (job.flow) this.clock.cancel(job.flow);
      this.jobs.delete(req.vm.name);
    }
    const wasRunning = req.vm.state !== 'shutoff';
    if (dom.copy) {
      const { host, phase } = dom.copy;
      if (phase === 'running' && host === req.destination && !this.down.has(host)) {
        this.finishCopy(dom, wasRunning);
        return { host, action: `completed: it already ran on ${host}, so the copy on ${req.vm.host} was removed` };
      }
      dom.copy = undefined;
      this.save({ domains: [dom] });
    }
    if (dom.vm.host === req.destination) return { host: dom.vm.host, action: `the migration had finished: it runs on ${req.destination}` };
    if (dom.vm.host !== req.vm.host) return { host: dom.vm.host, action: `found on ${dom.vm.host}` };
    if (this.down.has(dom.vm.host)) return { host: null, action: `${dom.vm.host} does not answer` };
    if (wasRunning && dom.vm.state !== 'running') {
      // Shut down (or paused for the switch-over) when the process died: start it again where it was.
      if (dom.vm.state === 'shutoff') await this.clock.sleep(SIM_TIMES.bootMs);
      dom.vm.state = 'running';
      this.save({ domains: [dom] });
      return { host: dom.vm.host, action: `rolled back: started again on ${dom.vm.host}, any partial copy on ${req.destination} deleted` };
    }
    return { host: dom.vm.host, action: `rolled back: still on ${dom.vm.host}, any partial copy on ${req.destination} deleted` };
  }

  async fence(host: string, fence: Fence | null, force = false): Promise<Outcome<object> & { holder?: Fence }> {
    const h = this.hosts.get(host);
    if (!h || this.down.has(host)) return this.unreachable(host, 0);
    if (h.fence && !force && fence && h.fence.plan !== fence.plan) return { ok: false, reason: 'refused', detail: `${host} is held by another plan`, holder: h.fence };
    if (fence) h.fence = fence;
    else delete h.fence;
    this.save({ hosts: [h] });
    return { ok: true };
  }

  async maintain(host: string, step: MaintainStep): Promise<Outcome<object>> {
    const h = this.hosts.get(host);
    if (!h || this.down.has(host)) return this.unreachable(host, 0);
    // Down for the step: its guests (there should be none: the roll emptied it) are gone with it.
    this.crash(host);
    await this.clock.sleep(step.durationMs);
    if (step.fail) return { ok: true };
    this.down.delete(host);
    if (step.version) h.hypervisor = { ...h.hypervisor, version: step.version };
    for (const d of this.domains.values()) if (d.vm.host === host && d.vm.state === 'crashed') d.vm.state = 'shutoff';
    this.save({ hosts: [h], domains: [...this.domains.values()].filter((d) => d.vm.host === host), down: [...this.down] });
    return { ok: true };
  }

  async power(vm: Vm, to: 'off' | 'on', opts: { timeoutS: number; forceOff: boolean }): Promise<Outcome<object>> {
    const d = this.domains.get(vm.name);
    if (!d || d.vm.host !== vm.host) return { ok: false, reason: 'not-found', detail: `${vm.name} is not on ${vm.host}`, host: vm.host };
    if (this.down.has(vm.host)) return this.unreachable(vm.host, 0);
    if (to === 'off') {
      if (d.vm.state === 'shutoff') return { ok: true };
      if (d.vm.state !== 'running') return { ok: false, reason: 'refused', detail: `${vm.name} is ${d.vm.state}: only a running guest is shut down`, host: vm.host };
      if (d.ignoresShutdown) {
        await this.clock.sleep(opts.timeoutS * 1000);
        if (!opts.forceOff) return { ok: false, reason: 'shutdown-refused', detail: `${vm.name} ignored shutdown for ${opts.timeoutS} s and the plan does not allow forcing it off; it keeps running on ${vm.host}`, host: vm.host };
      } else await this.clock.sleep(SIM_TIMES.shutdownMs);
      if (this.down.has(vm.host)) return this.unreachable(vm.host, 0);
      d.vm.state = 'shutoff';
    } else {
      if (d.vm.state === 'running') return { ok: true };
      if (d.vm.state !== 'shutoff') return { ok: false, reason: 'refused', detail: `${vm.name} is ${d.vm.state}: only a shut-off guest is started`, host: vm.host };
      await this.clock.sleep(SIM_TIMES.bootMs);
      if (this.down.has(vm.host)) return this.unreachable(vm.host, 0);
      d.vm.state = 'running';
    }
    this.save({ domains: [d] });
    return { ok: true };
  }

  async locate(vm: Vm, hosts: string[]): Promise<Location> {
    const d = this.domains.get(vm.name);
    const unreachable = hosts.filter((h) => this.down.has(h));
    const found = d && hosts.includes(d.vm.host) && !this.down.has(d.vm.host) ? [{ host: d.vm.host, state: d.vm.state }] : [];
    return { vm: vm.name, found, unreachable };
  }

  async close(): Promise<void> {
    // Compacted while the lock is held: the next process reads one snapshot.
    try {
      if (this.writer?.pending) this.writer.snapshot(this.snapshot(this.changedAt));
    } finally {
      this.writer?.close();
      this.writer = undefined;
      this.unlock();
    }
    this.unlock = () => {};
  }

  private precondition(d: SimDomain | undefined, vm: Vm, dst: string, states: string[]): (Failure & { bytes: number }) | undefined {
    if (!d || d.vm.host !== vm.host) {
      return { ok: false, reason: 'not-found', detail: `${vm.name} is not on ${vm.host}`, host: vm.host, bytes: 0 };
    }
    for (const h of [vm.host, dst]) if (this.down.has(h) || !this.hosts.has(h)) return this.unreachable(h, 0);
    if (vm.host === dst) return { ok: false, reason: 'refused', detail: 'destination is the source', host: dst, bytes: 0 };
    if (!states.includes(d.vm.state)) {
      return { ok: false, reason: 'refused', detail: `domain is ${d.vm.state}`, host: vm.host, bytes: 0 };
    }
    return undefined;
  }

  private unreachable(host: string, bytes: number): Failure & { bytes: number } {
    return { ok: false, reason: 'unreachable', detail: `${host} stopped answering`, host, bytes };
  }

  /** Why a job cannot go on: aborted, or a host down. */
  private broken(src: string, dst: string, job: Job): Failure | undefined {
    if (this.down.has(dst)) return this.unreachable(dst, 0);
    if (this.down.has(src)) return this.unreachable(src, 0);
    if (job.aborted) return { ok: false, reason: 'aborted', detail: 'migration job aborted; guest still on its source' };
    return undefined;
  }

  private async send(job: Job, src: string, dst: string, bytes: number, cap: number): Promise<'done' | 'cancelled'> {
    if (job.aborted || this.down.has(src) || this.down.has(dst)) return 'cancelled';
    const { flow, finished } = this.clock.transfer(src, dst, bytes, cap);
    job.flow = flow;
    const r = await finished;
    job.flow = undefined;
    return job.aborted ? 'cancelled' : r;
  }
}

/** Stable UUID-shaped id from a name, so runs are reproducible. */
function stableUuid(name: string): string {
  let h = 0x811c9dc5;
  const parts: string[] = [];
  for (let round = 0; round < 4; round++) {
    for (const ch of `${round}:${name}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    parts.push(h.toString(16).padStart(8, '0'));
  }
  const hex = parts.join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
