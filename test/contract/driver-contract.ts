/**
 * The driver contract: what every driver (sim, libvirt, openstack) must do, written once against
 * the Driver interface. Each tier calls driverContract() with a fixture on its real fleet: the
 * simulator in the fast tier, the libvirt testbed and the OpenStack test cloud in theirs.
 *
 * Covered: the inventory's shape; locate in each state the fleet offers; live and cold
 * migrations there and back; abort; recover (nothing in flight, a finished move); fences and
 * leases (refused with the holder, forced, lifted); and faults injected at every method through
 * a whole evacuate(), after which the run has ended cleanly and the VM runs on exactly one host.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EvacError, ExitCode } from '../../scripts/errors.ts';
import type { Driver } from '../../scripts/fleet/driver.ts';
import type { GuardLimits } from '../../scripts/fleet/guard.ts';
import type { OpenOptions } from '../../scripts/fleet/open.ts';
import type { Fence, Vm, VmState } from '../../scripts/fleet/types.ts';
import type { LoadedPlan } from '../../scripts/plan/load.ts';
import { evacuate } from '../../scripts/runner/evacuate.ts';
import { readJournal } from '../../scripts/runner/journal.ts';
import { FAULTS, faulty, METHODS, type Fault, type Injected, type MethodName } from './faulty.ts';

export interface ContractFixture {
  /** Open a driver on the fleet (a new one each call; the fleet outlives it). */
  open(opts?: OpenOptions): Promise<Driver>;
  /** A host to move from, a host to move to, and a running VM on the source that may go there and back. */
  source: string;
  destination: string;
  vm: string;
  /** VMs of the fleet in other states, for locate. */
  states?: { vm: string; state: VmState }[];
  /** A plan that moves only `vm` from `source` to `destination` (vms: [vm]); with where its journal goes. */
  plan(name: string): { loaded: LoadedPlan; reportsDir: string };
  /** The methods and faults to inject through evacuate() (every one by default). */
  faults?: { methods?: readonly MethodName[]; kinds?: readonly Fault[] };
  /** Bounds on hung calls for those runs (a real fleet: short ones). */
  limits?: Partial<GuardLimits>;
  /** Per-test timeout, ms. */
  timeoutMs?: number;
  /**
   * false where the fleet keeps a destination's lease itself instead of a mark the driver writes
   * (Nova: a compute service cannot be marked without disabling it, and a disabled one takes no
   * migration; README, The OpenStack driver). Such a lease is taken and lifted without a mark:
   * the destination shows no fence and stays open to migrations. Default true.
   */
  marksDestinations?: boolean;
}

const fence = (plan: string, role: Fence['role'] = 'source'): Fence => ({ plan, run: 'contract', role, controller: 'contract', pid: process.pid, since: new Date().toISOString() });

export function driverContract(name: string, fx: ContractFixture): void {
  const timeout = fx.timeoutMs ?? 60_000;
  const withDriver = async <T>(body: (d: Driver) => Promise<T>): Promise<T> => {
    const d = await fx.open();
    try {
      return await body(d);
    } finally {
      await d.close();
    }
  };
  const vmOf = async (d: Driver, vmName = fx.vm): Promise<Vm> => {
    const got = await d.inventory();
    if (!got.ok) throw new Error(`inventory: ${got.detail}`);
    const vm = got.inventory.vms.find((v) => v.name === vmName);
    if (!vm) throw new Error(`${vmName} is not in the fleet`);
    return vm;
  };
  const hostsOf = async (d: Driver) => {
    const got = await d.inventory();
    return got.ok ? got.inventory.hosts.map((h) => h.name) : [fx.source, fx.destination];
  };
  /** Where the VM is: exactly one host, asserted. */
  const onlyOn = async (d: Driver): Promise<string> => {
    const vm = await vmOf(d);
    const where = await d.locate(vm, await hostsOf(d));
    expect(where.found.map((f) => f.host), `${fx.vm} runs on exactly one host`).toHaveLength(1);
    return where.found[0].host;
  };
  /** Put the VM back on its source and lift every fence, whatever a test left. */
  const reset = async () => withDriver(async (d) => {
    const got = await d.inventory();
    if (got.ok) for (const h of got.inventory.hosts) if (h.fence) await d.fence(h.name, null, true);
    const vm = await vmOf(d);
    if (vm.host !== fx.source) {
      const back = await d.liveMigrate({ vm, destination: fx.source, maxDowntimeMs: 500, onProgress: () => {} });
      if (!back.ok) await d.coldMigrate({ vm, destination: fx.source, shutdownTimeoutS: 60, forceOff: true, deadlineMs: 600_000, onProgress: () => {} });
    }
    expect(await onlyOn(d)).toBe(fx.source);
  });

  describe(`driver contract: ${name}`, () => {
    it('inventory: hosts with capacity, VMs on known hosts, names unique', async () => withDriver(async (d) => {
      const got = await d.inventory();
      expect(got.ok).toBe(true);
      if (!got.ok) return;
      const inv = got.inventory;
      const hosts = new Set(inv.hosts.map((h) => h.name));
      expect(hosts.size).toBe(inv.hosts.length);
      expect(hosts.has(fx.source) && hosts.has(fx.destination)).toBe(true);
      for (const h of inv.hosts) {
        expect(typeof h.uuid, h.name).toBe('string');
        for (const k of ['vcpu', 'memory_mib', 'disk_gib']) expect(Number.isFinite(h.capacity[k]), `${h.name} ${k}`).toBe(true);
        expect(h.hypervisor.type.length, h.name).toBeGreaterThan(0);
      }
      const names = inv.vms.map((v) => v.name);
      expect(new Set(names).size, 'VM names unique').toBe(names.length);
      for (const v of inv.vms) {
        expect(hosts.has(v.host) || inv.unreachable.some((u) => u.host === v.host), `${v.name} on a known host`).toBe(true);
        expect(['running', 'paused', 'shutoff', 'suspended', 'crashed', 'busy']).toContain(v.state);
        expect(['shared', 'local']).toContain(v.storage);
        for (const k of ['vcpu', 'memory_mib']) expect(v.resources[k], `${v.name} ${k}`).toBeGreaterThan(0);
      }
      expect(inv.vms.find((v) => v.name === fx.vm)).toMatchObject({ host: fx.source, state: 'running' });
    }), timeout);

    it('locate: found on its host in its state, never on another', async () => withDriver(async (d) => {
      for (const { vm: vmName, state } of [{ vm: fx.vm, state: 'running' as VmState }, ...fx.states ?? []]) {
        const vm = await vmOf(d, vmName);
        const where = await d.locate(vm, [vm.host, fx.destination === vm.host ? fx.source : fx.destination]);
        expect(where.found, vmName).toEqual([{ host: vm.host, state }]);
        expect(where.vm).toBe(vmName);
      }
    }), timeout);

    it('live migration there and back: ok, then on the destination only', async () => {
      await reset();
      await withDriver(async (d) => {
        const progress: string[] = [];
        const out = await d.liveMigrate({ vm: await vmOf(d), destination: fx.destination, maxDowntimeMs: 500, onProgress: (p) => progress.push(p.phase) });
        expect(out.ok, JSON.stringify(out)).toBe(true);
        expect(await onlyOn(d)).toBe(fx.destination);
        const back = await d.liveMigrate({ vm: await vmOf(d), destination: fx.source, maxDowntimeMs: 500, onProgress: () => {} });
        expect(back.ok, JSON.stringify(back)).toBe(true);
        expect(await onlyOn(d)).toBe(fx.source);
      });
    }, timeout);

    it('cold migration there and back: running on the destination only', async () => {
      await reset();
      await withDriver(async (d) => {
        const out = await d.coldMigrate({ vm: await vmOf(d), destination: fx.destination, shutdownTimeoutS: 60, forceOff: true, deadlineMs: 600_000, onProgress: () => {} });
        expect(out.ok, JSON.stringify(out)).toBe(true);
        expect(await onlyOn(d)).toBe(fx.destination);
        expect((await vmOf(d)).state).toBe('running');
        const back = await d.coldMigrate({ vm: await vmOf(d), destination: fx.source, shutdownTimeoutS: 60, forceOff: true, deadlineMs: 600_000, onProgress: () => {} });
        expect(back.ok, JSON.stringify(back)).toBe(true);
        expect(await onlyOn(d)).toBe(fx.source);
      });
    }, timeout);

    it('every state keeps its state across a move: a shut-off VM moved cold is not started, a paused one moved live stays paused', async () => withDriver(async (d) => {
      const hosts = await hostsOf(d);
      for (const { vm: vmName, state } of fx.states ?? []) {
        if (state !== 'shutoff' && state !== 'paused') continue;
        const vm = await vmOf(d, vmName);
        const home = vm.host;
        const to = hosts.find((h) => h !== home && (h === fx.destination || h === fx.source)) ?? fx.destination;
        const move = (v: Vm, dest: string) => (state === 'shutoff'
          ? d.coldMigrate({ vm: v, destination: dest, shutdownTimeoutS: 60, forceOff: false, deadlineMs: 600_000, onProgress: () => {} })
          : d.liveMigrate({ vm: v, destination: dest, maxDowntimeMs: 500, onProgress: () => {} }));
        const out = await move(vm, to);
        expect(out.ok, `${vmName}: ${JSON.stringify(out)}`).toBe(true);
        expect((await d.locate(vm, hosts)).found, vmName).toEqual([{ host: to, state }]);
        const back = await move(await vmOf(d, vmName), home);
        expect(back.ok, `${vmName} back: ${JSON.stringify(back)}`).toBe(true);
        expect((await d.locate(vm, hosts)).found, vmName).toEqual([{ host: home, state }]);
      }
    }), timeout * 2);

    it('abort: a live migration asked to stop ends aborted (or done, if it was quicker), the VM on one host', async () => {
      await reset();
      await withDriver(async (d) => {
        const vm = await vmOf(d);
        const running = d.liveMigrate({ vm, destination: fx.destination, maxDowntimeMs: 500, onProgress: () => {} });
        await d.clock.sleep(200);
        await d.abort(vm);
        const out = await running;
        if (!out.ok) expect(['aborted', 'error', 'timeout']).toContain(out.reason);
        expect([fx.source, fx.destination]).toContain(await onlyOn(d));
        const noJob = await d.abort(vm);
        expect(noJob.ok, 'nothing to abort any more').toBe(false);
      });
    }, timeout);

    it('recover: with nothing in flight it says where the VM runs; after a finished move, on its destination', async () => {
      await reset();
      await withDriver(async (d) => {
        const vm = await vmOf(d);
        const still = await d.recover({ vm, destination: fx.destination, method: 'live', waitMs: 1000 });
        expect(still.host).toBe(fx.source);
        expect(await onlyOn(d)).toBe(fx.source);
        expect((await d.liveMigrate({ vm, destination: fx.destination, maxDowntimeMs: 500, onProgress: () => {} })).ok).toBe(true);
        const done = await d.recover({ vm, destination: fx.destination, method: 'live', waitMs: 1000 });
        expect(done.host).toBe(fx.destination);
        expect(await onlyOn(d)).toBe(fx.destination);
      });
      await reset();
    }, timeout);

    it('fences and leases: taken, seen in the inventory, refused to another plan naming the holder, forced, lifted', async () => {
      await reset();
      await withDriver(async (d) => {
        expect((await d.fence(fx.source, fence('contract-a'))).ok).toBe(true);
        expect((await d.fence(fx.destination, fence('contract-a', 'destination'))).ok).toBe(true);
        const seen = await d.inventory();
        expect(seen.ok && seen.inventory.hosts.find((h) => h.name === fx.source)?.fence).toMatchObject({ plan: 'contract-a', role: 'source' });
        const leased = seen.ok ? seen.inventory.hosts.find((h) => h.name === fx.destination) : undefined;
        expect(leased, `${fx.destination} is in the inventory`).toBeDefined();
        if (fx.marksDestinations === false) expect(leased?.fence, 'a lease the fleet keeps leaves no mark').toBeUndefined();
        else expect(leased?.fence).toMatchObject({ plan: 'contract-a', role: 'destination' });
        const refused = await d.fence(fx.source, fence('contract-b'));
        expect(refused.ok).toBe(false);
        expect(refused.holder).toMatchObject({ plan: 'contract-a' });
        expect((await d.fence(fx.source, fence('contract-a'))).ok, 'the holder may renew its fence').toBe(true);
        expect((await d.fence(fx.source, fence('contract-b'), true)).ok, 'forced').toBe(true);
        for (const h of [fx.source, fx.destination]) expect((await d.fence(h, null, true)).ok).toBe(true);
        const lifted = await d.inventory();
        expect(lifted.ok && lifted.inventory.hosts.filter((h) => h.fence).map((h) => h.name)).toEqual([]);
      });
    }, timeout);

    const methods = fx.faults?.methods ?? METHODS;
    const kinds = fx.faults?.kinds ?? FAULTS;
    for (const method of methods) {
      for (const kind of kinds) {
        it(`a fault in ${method} (${kind}): the run ends with run-end and a documented exit code, the VM on exactly one host`, async () => {
          await reset();
          const { loaded, reportsDir } = fx.plan(`contract-${method.toLowerCase()}-${kind}`);
          // A run that goes well never calls abort, recover or coldMigrate: abort and recover are
          // reached when a live migration call breaks (the guard settles it through them), so
          // that call throws first; coldMigrate, in a cold run.
          const breaks = method === 'abort' || method === 'recover' ? 'liveMigrate' : undefined;
          if (method === 'coldMigrate') loaded.plan.migration = { ...loaded.plan.migration, mode: 'cold' };
          const injected: Injected[][] = [];
          const outcome = await evacuate(loaded, async (o) => {
            const f = faulty(await fx.open(o), { at: (m, n) => (n !== 1 ? undefined : m === method ? kind : m === breaks ? 'throw' : undefined) });
            injected.push(f.injected);
            return f.driver;
          }, () => {}, {
            reportsDir, ...(fx.limits ? { limits: fx.limits } : {}),
          }).then((done) => ({ code: done.exitCode, vm: done.report.vms.find((v) => v.vm === fx.vm) }), (e: unknown) => {
            expect(e).toBeInstanceOf(EvacError);
            return { code: (e as EvacError).exitCode, vm: undefined };
          });
          expect(injected.flat().map((i) => i.method), `the run called ${method}`).toContain(method);
          expect([ExitCode.ok, ExitCode.incomplete, ExitCode.fleet, ExitCode.held, ExitCode.badInput]).toContain(outcome.code);
          // Refused before it changed anything: no journal at all; else it ends with run-end.
          const journal = readJournal(join(reportsDir, `${loaded.plan.name}.journal.jsonl`));
          if (journal.length > 0) expect(journal.at(-1)).toMatchObject({ kind: 'run-end', exitCode: outcome.code });
          else {
            expect(outcome.vm, 'no journal: refused before anything changed').toBeUndefined();
            expect([ExitCode.fleet, ExitCode.held, ExitCode.badInput]).toContain(outcome.code);
          }
          await withDriver(async (d) => {
            const host = await onlyOn(d);
            expect([fx.source, fx.destination]).toContain(host);
            if (outcome.vm?.host) expect(host, 'where the report says').toBe(outcome.vm.host);
          });
          await reset();
        }, timeout);
      }
    }
  });
}
