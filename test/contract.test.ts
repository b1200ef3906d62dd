/** The driver contract on the simulator (the fast tier); test/integration and test/openstack run it on the real fleets. */
import { join } from 'node:path';
import { openDriver } from '../scripts/fleet/open.ts';
import { loadPlan } from '../scripts/plan/load.ts';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import { driverContract } from './contract/driver-contract.ts';
import { planFile, tempDir } from './helpers.ts';

const dir = tempDir('evac-contract-');
const fleet: EvacuationPlan['fleet'] = {
  driver: 'sim',
  sim: {
    // A named state file: the fleet outlives each driver opened on it, as a real one does.
    state_file: join(dir, 'fleet.json'),
    hosts: [
      { name: 'src', vcpu: 16, memory_mib: 65536, disk_gib: 500 },
      { name: 'dst', vcpu: 16, memory_mib: 65536, disk_gib: 500 },
      { name: 'far', vcpu: 16, memory_mib: 65536, disk_gib: 500 },
    ],
    vms: [
      { name: 'mover', host: 'src', vcpu: 2, memory_mib: 4096, disk_gib: 20, storage: 'local' },
      { name: 'resting', host: 'src', vcpu: 1, memory_mib: 2048, state: 'shutoff' },
      { name: 'held', host: 'far', vcpu: 1, memory_mib: 2048, state: 'paused' },
    ],
  },
};
const plan = (name: string): EvacuationPlan => ({ version: 1, name, fleet, sources: ['src'], vms: ['mover'], destinations: { hosts: ['dst'] }, migration: { cold: { allow: ['mover'] } } });

driverContract('sim', {
  open: async (o) => openDriver(plan('contract'), { ...o, reportsDir: dir }),
  source: 'src',
  destination: 'dst',
  vm: 'mover',
  states: [{ vm: 'resting', state: 'shutoff' }, { vm: 'held', state: 'paused' }],
  plan: (name) => ({ loaded: loadPlan(planFile(plan(name), tempDir('evac-contract-'))), reportsDir: dir }),
});
