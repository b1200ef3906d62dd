/**
 * Every VM state has a defined path, on the simulated fleet (the libvirt and OpenStack tiers
 * prove the same on real components): running and paused move live and land as they were, shut
 * off moves cold without being started, suspended and crashed stay where they are with the
 * reason; the source is empty of what could move, and `plan` says which cannot.
 */
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDriver } from '../scripts/fleet/open.ts';
import { loadPlan } from '../scripts/plan/load.ts';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import { evacuate } from '../scripts/runner/evacuate.ts';
import { cli, tempDir } from './helpers.ts';

const STATES = ['running', 'paused', 'shutoff', 'suspended', 'crashed'] as const;

function plan(mode: 'live-then-cold' | 'live' | 'cold', extra: Record<string, unknown> = {}) {
  return {
    version: 1, name: `states-${mode}`,
    fleet: {
      driver: 'sim',
      sim: {
        hosts: ['src', 'dst1', 'dst2'].map((name) => ({ name, vcpu: 32, memory_mib: 65536, disk_gib: 1000, cpu_model: 'Skylake-Server', hypervisor_version: '8.2.0' })),
        vms: STATES.flatMap((state) => [
          { name: `${state}-shared`, host: 'src', vcpu: 2, memory_mib: 2048, state },
          { name: `${state}-local`, host: 'src', vcpu: 2, memory_mib: 2048, disk_gib: 20, storage: 'local', state },
        ]),
      },
    },
    sources: ['src'],
    destinations: { hosts: ['dst1', 'dst2'] },
    migration: { mode, ...extra },
  };
}

async function runPlan(p: ReturnType<typeof plan>) {
  const dir = tempDir();
  const file = join(dir, `${p.name}.yaml`);
  writeFileSync(file, stringify(p));
  const loaded = loadPlan(file);
  const done = await evacuate(loaded, (o) => openDriver(loaded.plan as EvacuationPlan, o), () => {}, { reportsDir: dir });
  return { done, file, dir, byVm: new Map(done.report.vms.map((v) => [v.vm, v])) };
}

describe('every VM state has a defined path (sim)', () => {
  it('live-then-cold: running and paused live, shut-off cold and still off, suspended and crashed left with the reason', async () => {
    const { done, byVm } = await runPlan(plan('live-then-cold'));
    for (const disk of ['shared', 'local']) {
      for (const s of ['running', 'paused']) expect([byVm.get(`${s}-${disk}`)!.status, byVm.get(`${s}-${disk}`)!.method]).toEqual(['moved', 'live']);
      expect([byVm.get(`shutoff-${disk}`)!.status, byVm.get(`shutoff-${disk}`)!.method]).toEqual(['moved', 'cold']);
      expect(byVm.get(`suspended-${disk}`)!.status).toBe('unplaced');
      expect(byVm.get(`suspended-${disk}`)!.reason).toMatch(/suspended; resume it or shut it off first/);
      expect(byVm.get(`crashed-${disk}`)!.status).toBe('unplaced');
      expect(byVm.get(`crashed-${disk}`)!.reason).toMatch(/crashed/);
    }
    // Each landed as it was: the fleet after the run says so.
    const after = new Map(done.result.after!.vms.map((v) => [v.name, v]));
    for (const s of ['running', 'paused', 'shutoff'] as const) {
      for (const disk of ['shared', 'local']) {
        const v = after.get(`${s}-${disk}`)!;
        expect(v.host).not.toBe('src');
        expect(v.state, `${s}-${disk}`).toBe(s);
      }
    }
    // The shut-off VM was never started: no downtime counted, no shutdown asked.
    expect(byVm.get('shutoff-shared')!.attempts.map((a) => a.method)).toEqual(['cold']);
  });

  it('mode live: a shut-off VM still moves (cold costs it nothing); nothing else is shut down', async () => {
    const { byVm } = await runPlan(plan('live'));
    expect([byVm.get('shutoff-local')!.status, byVm.get('shutoff-local')!.method]).toEqual(['moved', 'cold']);
    for (const s of ['running', 'paused']) expect(byVm.get(`${s}-local`)!.attempts.map((a) => a.method)).toEqual(['live']);
  });

  it('plan names the VMs that cannot move and why, and does not claim every VM passed', async () => {
    const dir = tempDir();
    const file = join(dir, 'states.yaml');
    writeFileSync(file, stringify(plan('live-then-cold')));
    const r = await cli('plan', file);
    expect(r.stdout + r.stderr).toMatch(/suspended-shared[\s\S]*suspended; resume it or shut it off first/);
    expect(r.stdout + r.stderr).toMatch(/crashed-local[\s\S]*crashed/);
    expect(r.stdout).toMatch(/shutoff-local\s+src → dst\d\s+cold/);
  });
});
