/**
 * The simulated fleet's state file (scripts/fleet/sim/state.ts): a snapshot line and a line per
 * change. Attacked with random change sequences cut at random bytes (a process killed in the
 * middle of a write), compactions at random moments, and files that are not states; and its cost:
 * a change adds a line the size of what it touched, not a copy of the fleet.
 */
import { appendFileSync, existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readState, StateWriter, type SavedFleet, type SimDomain } from '../scripts/fleet/sim/state.ts';
import { SimDriver } from '../scripts/fleet/sim/driver.ts';
import { cli, planFile, tempDir } from './helpers.ts';

const dom = (name: string, host: string, state = 'running'): SimDomain => ({
  vm: { name, uuid: `u-${name}`, host, state: state as SimDomain['vm']['state'], resources: { vcpu: 1, memory_mib: 512, disk_gib: 1 }, storage: 'shared', cpuModel: 'qemu64', residentMib: 512, dirtyMibps: 1 },
  residentBytes: 1, dirtyBps: 1, ignoresShutdown: false,
});

const fleet = (): SavedFleet => ({
  version: 1, t: 0, down: [],
  hosts: ['a', 'b', 'c'].map((name) => ({ name, uuid: name, cpuModel: 'qemu64', hypervisor: { type: 'QEMU', version: '8.0' }, capacity: { vcpu: 8 }, labels: {} })),
  domains: ['v1', 'v2', 'v3', 'v4'].map((n) => dom(n, 'a')),
});

type Step = { vm: number; host: number; fence: boolean; down: boolean };

/** The fleet after applying steps in memory: what the file must say. */
function apply(base: SavedFleet, steps: Step[]): SavedFleet {
  const f = structuredClone(base);
  steps.forEach((s, i) => {
    const d = f.domains[s.vm];
    d.vm.host = f.hosts[s.host].name;
    if (s.fence) f.hosts[s.host].fence = { plan: `p${i}`, role: 'source', run: 'r', controller: 'c', pid: 1, at: 'now' } as never;
    if (s.down) f.down = [...f.down, f.hosts[s.host].name];
    f.t = i + 1;
  });
  return f;
}

const norm = (f: SavedFleet) => ({
  t: f.t, down: [...f.down].sort(),
  hosts: [...f.hosts].sort((a, b) => a.name.localeCompare(b.name)),
  domains: [...f.domains].sort((a, b) => a.vm.name.localeCompare(b.vm.name)),
});

const steps = fc.array(fc.record({ vm: fc.nat(3), host: fc.nat(2), fence: fc.boolean(), down: fc.boolean() }), { maxLength: 30 });

describe('the simulated fleet state file: a snapshot and a line per change', () => {
  it('any sequence of changes, compacted at any moments, reads back as the fleet it describes', () => {
    fc.assert(fc.property(steps, fc.array(fc.nat(30), { maxLength: 4 }), (seq, compactAt) => {
      const path = join(tempDir('evac-state-'), 'fleet.json');
      const w = new StateWriter(path);
      const live = structuredClone(fleet());
      w.snapshot(live);
      seq.forEach((s, i) => {
        const after = apply(fleet(), seq.slice(0, i + 1));
        const d = after.domains[s.vm];
        w.append({ t: i + 1, domains: [d], ...(s.fence ? { hosts: [after.hosts[s.host]] } : {}), ...(s.down ? { down: after.down } : {}) });
        if (compactAt.includes(i)) w.snapshot(after);
      });
      w.close();
      expect(norm(readState(path).saved)).toEqual(norm(apply(fleet(), seq)));
    }), { numRuns: 150 });
  });

  it('a file cut at any byte (a writer killed mid-line) reads as a prefix of its changes; the next writer cuts the torn line and appends cleanly', () => {
    fc.assert(fc.property(steps.filter((s) => s.length > 0), fc.double({ min: 0, max: 1, noNaN: true }), (seq, where) => {
      const path = join(tempDir('evac-state-'), 'fleet.json');
      const w = new StateWriter(path);
      w.snapshot(fleet());
      const snapshotBytes = statSync(path).size;
      seq.forEach((s, i) => w.append({ t: i + 1, domains: [apply(fleet(), seq.slice(0, i + 1)).domains[s.vm]], ...(s.down ? { down: apply(fleet(), seq.slice(0, i + 1)).down } : {}), ...(s.fence ? { hosts: [apply(fleet(), seq.slice(0, i + 1)).hosts[s.host]] } : {}) }));
      w.close();
      const size = statSync(path).size;
      const cut = snapshotBytes + Math.floor((size - snapshotBytes) * where);
      truncateSync(path, cut);
      const { saved, bytes, changes } = readState(path);
      expect(bytes).toBeLessThanOrEqual(cut);
      expect(norm(saved)).toEqual(norm(apply(fleet(), seq.slice(0, changes))));
      // The next writer goes on from there: its line is read back, the torn one is gone.
      const next = new StateWriter(path);
      next.adopt(bytes, snapshotBytes);
      next.append({ t: 99, domains: [dom('v1', 'c', 'paused')] });
      next.close();
      const again = readState(path);
      expect(again.changes).toBe(changes + 1);
      expect(again.saved.domains.find((d) => d.vm.name === 'v1')!.vm).toMatchObject({ host: 'c', state: 'paused' });
    }), { numRuns: 150 });
  });

  it('a damaged line before the last one, or a file that is not a state: refused as bad input, not read as a fleet', () => {
    const dir = tempDir('evac-state-');
    const path = join(dir, 'fleet.json');
    const w = new StateWriter(path);
    w.snapshot(fleet());
    w.append({ t: 1, domains: [dom('v1', 'b')] });
    w.close();
    appendFileSync(path, '{"t": 2, "domains": [\n{"t":3}\n');
    expect(() => readState(path)).toThrow(/not a simulated fleet state evacuator wrote/);
    for (const text of ['', 'null', '[]', '{"version":1}', 'x'.repeat(10)]) {
      writeFileSync(path, text);
      expect(() => readState(path), JSON.stringify(text)).toThrow(/not a simulated fleet state|cannot read/);
    }
    // The first format (one snapshot, no newline) still reads; its first change rewrites it whole.
    writeFileSync(path, JSON.stringify(fleet()));
    expect(readState(path)).toMatchObject({ bytes: 0, changes: 0 });
  });

  it('a move on a 6,000-VM fleet adds a line of what it touched, not a copy of the fleet; the file read back is the fleet the driver holds', async () => {
    const dir = tempDir('evac-state-');
    const state = join(dir, 'fleet.json');
    const sources = ['hv-001', 'hv-002'] as [string, ...string[]];
    const plan = { version: 1, name: 'big', sources, fleet: { driver: 'sim' as const, sim: { seed: 3, state_file: state, generate: { hosts: 300, vms: 6000 } } } };
    const r = await cli('run', planFile(plan, dir), '--reports', dir);
    expect([0, 3], r.stderr).toContain(r.code);
    // Closed: compacted into one snapshot line.
    const whole = readFileSync(state, 'utf8');
    expect(whole.trimEnd().split('\n')).toHaveLength(1);
    // Another process changes the fleet: one fence line per host, far smaller than the fleet.
    const driver = new SimDriver(plan.fleet.sim, { path: state, restore: true });
    const before = statSync(state).size;
    await driver.fence('hv-003', { plan: 'other', role: 'destination', run: 'x', controller: 'c', pid: process.pid, at: new Date().toISOString() } as never);
    await driver.fence('hv-004', null);
    const lines = readFileSync(state, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(statSync(state).size - before).toBeLessThan(2000);
    expect(before).toBeGreaterThan(1_000_000);
    const read = readState(state).saved;
    expect(read.hosts.find((h) => h.name === 'hv-003')!.fence).toMatchObject({ plan: 'other' });
    const inv = await driver.inventory();
    expect(inv.ok && inv.inventory.vms.length).toBe(6000);
    await driver.close();
    // Closing compacts: one line again, holding the fence.
    expect(readFileSync(state, 'utf8').trimEnd().split('\n')).toHaveLength(1);
    expect(readState(state).saved.hosts.find((h) => h.name === 'hv-003')!.fence).toMatchObject({ plan: 'other' });
  });

  it('a snapshot a killed writer left under its temporary name is removed by the next process that holds the state', async () => {
    const dir = tempDir('evac-state-');
    const state = join(dir, 'fleet.json');
    const dead = join(dir, 'fleet.json.4194000.0badf00d.tmp');
    const mine = join(dir, `fleet.json.${process.pid}.0badf00d.tmp`);
    const other = join(dir, 'other.json.4194000.0badf00d.tmp');
    for (const f of [dead, mine, other]) writeFileSync(f, '{"half":');
    const driver = new SimDriver({ hosts: [{ name: 'a', vcpu: 1, memory_mib: 1024, disk_gib: 1 }] }, { path: state, restore: true });
    await driver.close();
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(mine)).toBe(true);
    expect(existsSync(other)).toBe(true);
  });
});
