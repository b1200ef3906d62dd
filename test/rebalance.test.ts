/**
 * Rebalancing: the planner's choice of VMs against brute force, its rules on random fleets, and
 * runs through the CLI on the simulated fleet: every host under the target afterwards, no host
 * ever past its capacity (replayed from the journal), a move into a host waiting for the move out
 * of it, the budget's shortfall, freeing hosts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { demandOf, type Host, type Vm } from '../scripts/fleet/types.ts';
import { bytesOf, coverAtLeast, planRebalance } from '../scripts/placement/rebalance.ts';
import type { Report } from '../scripts/report/build.ts';
import { readJournal } from '../scripts/runner/journal.ts';
import { readState } from '../scripts/fleet/sim/state.ts';
import { cli, overfills, planFile, tempDir } from './helpers.ts';

const vm = (name: string, host: string, memory_mib: number, extra: Partial<Vm> = {}): Vm => ({
  name, uuid: name, host, state: 'running', cpuModel: 'Skylake-Server', storage: 'shared', resources: { vcpu: 1, memory_mib, disk_gib: 20 }, ...extra,
});
const host = (name: string, memory_mib: number): Host => ({
  name, uuid: name, cpuModel: 'Skylake-Server', hypervisor: { type: 'QEMU', version: '8.2.0' }, labels: {}, capacity: { vcpu: 64, memory_mib, disk_gib: 2000 },
});
const settings = { overcommit: { vcpu: 4, memory_mib: 1, disk_gib: 1 }, reserve: { memory_mib: 512 }, groups: [] };

describe('the rebalance planner', () => {
  it('chooses the VMs that cover a host\'s excess at the fewest bytes (against brute force)', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ mem: fc.integer({ min: 1, max: 32 }), local: fc.boolean(), disk: fc.integer({ min: 0, max: 100 }) }), { minLength: 1, maxLength: 10 }),
      fc.integer({ min: 1, max: 100 }),
      (items, share) => {
        const vms = items.map((x, i) => vm(`v${i}`, 'h', x.mem * 1024, { storage: x.local ? 'local' : 'shared', resources: { vcpu: 1, memory_mib: x.mem * 1024, disk_gib: x.disk } }));
        const total = vms.reduce((n, v) => n + v.resources.memory_mib, 0);
        const excess = { memory_mib: Math.max(1, Math.floor((total * share) / 100)) };
        let best = Infinity;
        for (let mask = 1; mask < 1 << vms.length; mask++) {
          const set = vms.filter((_, i) => mask & (1 << i));
          if (set.reduce((n, v) => n + demandOf(v).memory_mib, 0) >= excess.memory_mib) best = Math.min(best, set.reduce((n, v) => n + bytesOf(v), 0));
        }
        const pick = coverAtLeast(vms, excess)!;
        expect(pick.reduce((n, v) => n + v.resources.memory_mib, 0)).toBeGreaterThanOrEqual(excess.memory_mib);
        expect(pick.reduce((n, v) => n + bytesOf(v), 0)).toBe(best);
      },
    ), { numRuns: 300 });
  });

  it('on random fleets: never past a host\'s capacity, anti-affinity kept, every host under the ceiling when it says so', () => {
    fc.assert(fc.property(fc.integer({ min: 3, max: 8 }), fc.integer({ min: 1, max: 1_000_000 }), (n, seed) => {
      const hosts = Array.from({ length: n }, (_, i) => host(`h${i}`, 65536));
      const vms: Vm[] = [];
      let s = seed;
      const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31);
      for (const h of hosts) {
        const fill = next() % 2 ? 0.9 : 0.3;
        let used = 0;
        for (let k = 0; ; k++) {
          const mem = [2048, 4096, 8192, 16384][next() % 4];
          if (used + mem > fill * 65536) break;
          used += mem;
          vms.push(vm(`${h.name}-${k}`, h.name, mem, next() % 5 === 0 ? { antiAffinity: `g${next() % 3}` } : {}));
        }
      }
      const plan = planRebalance({ hosts, vms, pinned: new Set(), settings, target: { ceiling: { memory_mib: 0.75 } }, budget: {} });
      const where = new Map(vms.map((v) => [v.name, v.host]));
      for (const m of plan.moves) where.set(m.vm, m.destination);
      for (const h of hosts) {
        const on = vms.filter((v) => where.get(v.name) === h.name);
        const mem = on.reduce((a, v) => a + v.resources.memory_mib, 0);
        expect(mem).toBeLessThanOrEqual(65536 - 512);
        if (plan.reached) expect(mem / 65536).toBeLessThanOrEqual(0.75 + 1e-9);
        const groups = on.filter((v) => v.antiAffinity).map((v) => v.antiAffinity);
        // A move never joins two members; members that already shared a host before may stay.
        for (const m of plan.moves.filter((x) => x.destination === h.name)) {
          const g = vms.find((v) => v.name === m.vm)!.antiAffinity;
          if (g) expect(groups.filter((x) => x === g)).toHaveLength(1);
        }
      }
      expect(new Set(plan.moves.map((m) => m.vm)).size).toBe(plan.moves.length);
    }), { numRuns: 100 });
  });
});

describe('rebalance runs through the CLI on the simulated fleet', () => {
  const settingsOfPlan = { overcommit: { vcpu: 4, memory_mib: 1, disk_gib: 1 }, reserve: { memory_mib: 512 } };

  it('plans/rebalance.yaml: plan shows the moves and before/after; run ends with every host under 70%, no host ever overfilled', async () => {
    const dir = tempDir('evac-rb-');
    const p = await cli('plan', 'plans/rebalance.yaml');
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/Rebalance rack-c-rebalance: memory_mib at most 70%\. 5 moves, 23\.0 GiB to move\./);
    expect(p.stdout).toMatch(/hv-c1\s+89% →\s+66%/);
    expect(p.stdout).toMatch(/The moves reach the target\./);
    const r = await cli('run', 'plans/rebalance.yaml', '--reports', dir);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/5 of 5 planned moves done .*; target reached on every host\./);
    const report = JSON.parse(readFileSync(join(dir, 'rack-c-rebalance.json'), 'utf8')) as Report;
    expect(report.rebalance!.reached).toBe(true);
    expect(report.rebalance!.hosts.map((h) => h.host)).toEqual(['hv-c1', 'hv-c2', 'hv-c3', 'hv-c4']);
    for (const h of report.rebalance!.hosts) {
      expect(h.after!.memory_mib).toBeLessThanOrEqual(0.7);
      expect(h.after).toEqual(h.planned);
    }
    expect(report.rebalance!.hosts[0].before.memory_mib).toBeGreaterThan(0.85);
    // The fleet itself agrees.
    const fleet = readState(join(dir, 'rack-c-rebalance.fleet.json')).saved;
    for (const h of ['hv-c1', 'hv-c2', 'hv-c3', 'hv-c4']) {
      expect(fleet.domains.filter((d) => d.vm.host === h).reduce((n, d) => n + d.vm.resources.memory_mib, 0) / 65536).toBeLessThanOrEqual(0.7);
    }
    expect(overfills(readJournal(join(dir, 'rack-c-rebalance.journal.jsonl')), settingsOfPlan)).toEqual([]);
    expect(readFileSync(join(dir, 'rack-c-rebalance.html'), 'utf8')).toContain('Every host is under the target');
  });

  it('a move into a host waits until the move out of it has made room', async () => {
    // hx is nearly full and must shed its 31 GiB VM; pack sends hy's 14 GiB VM into the room that leaves on hx.
    const dir = tempDir('evac-rb-');
    const file = planFile({
      version: 1, name: 'wait', kind: 'rebalance',
      fleet: { driver: 'sim', sim: {
        hosts: ['hx', 'hy', 'hz'].map((name) => ({ name, vcpu: 32, memory_mib: 65536, disk_gib: 1000 })),
        vms: [
          { name: 'big', host: 'hx', vcpu: 4, memory_mib: 31744 }, { name: 'stay', host: 'hx', vcpu: 4, memory_mib: 32768 },
          { name: 'mid', host: 'hy', vcpu: 4, memory_mib: 14336 }, { name: 'y2', host: 'hy', vcpu: 4, memory_mib: 36864 },
          { name: 'y3', host: 'hy', vcpu: 1, memory_mib: 1024 }, { name: 'z1', host: 'hz', vcpu: 4, memory_mib: 8192 },
        ],
      } },
      rebalance: { target: { max_utilization: { memory_mib: 0.75 } } },
      migration: { concurrency: { total: 4, per_source: 2, per_destination: 2 } },
    }, dir);
    const p = await cli('plan', file);
    expect(p.stdout).toMatch(/big\s+hx → hz/);
    expect(p.stdout).toMatch(/mid\s+hy → hx/);
    const r = await cli('run', file, '--reports', dir);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = readJournal(join(dir, 'wait.journal.jsonl'));
    const seq = (kind: string, name: string) => lines.find((l) => l.kind === kind && 'vm' in l && l.vm === name)!.seq;
    expect(seq('move-start', 'mid')).toBeGreaterThan(seq('move-end', 'big'));
    expect(overfills(lines, settingsOfPlan)).toEqual([]);
  });

  it('within a budget: as close as it gets, and by how much it falls short', async () => {
    const dir = tempDir('evac-rb-');
    const plan = readFileSync('plans/rebalance.yaml', 'utf8').replace('migrations: 8', 'migrations: 2');
    const file = join(dir, 'tight.yaml');
    (await import('node:fs')).writeFileSync(file, plan);
    const p = await cli('plan', file);
    expect(p.code).toBe(3);
    expect(p.stdout).toMatch(/2 moves/);
    expect(p.stdout).toMatch(/The target is not reached:\n\s+- hv-c\d: memory_mib at \d+\.\d% against 70\.0% \(\d+ MiB over\), the budget is spent/);
    const r = await cli('run', file, '--reports', dir);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/target not reached: hv-c\d: memory_mib at/);
  });

  it('free_hosts empties the hosts that cost the fewest bytes', async () => {
    const dir = tempDir('evac-rb-');
    const file = planFile({
      version: 1, name: 'free', kind: 'rebalance',
      fleet: { driver: 'sim', sim: { seed: 4, generate: { hosts: 6, vms: 30 } } },
      rebalance: { target: { free_hosts: 2 } },
    }, dir);
    const r = await cli('run', file, '--reports', dir);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'free.json'), 'utf8')) as Report;
    expect(report.rebalance!.freed).toHaveLength(2);
    const fleet = readState(join(dir, 'free.fleet.json')).saved;
    for (const h of report.rebalance!.freed) expect(fleet.domains.filter((d) => d.vm.host === h)).toEqual([]);
    expect(overfills(readJournal(join(dir, 'free.journal.jsonl')), settingsOfPlan)).toEqual([]);
  });
});
