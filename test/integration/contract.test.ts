/**
 * The driver contract (test/contract/driver-contract.ts) on the libvirt testbed: g1 moves between
 * hv1 and hv2, live and cold, over real virsh and SSH; a shut-off domain (g9, defined, never
 * started) and a paused one (g3, suspended) for locate. A fault thrown at every driver method
 * through a whole evacuate(), with short bounds on calls that do not answer.
 */
import { writeFileSync } from 'node:fs';
import { beforeAll, describe } from 'vitest';
import { openDriver } from '../../scripts/fleet/open.ts';
import { loadPlan } from '../../scripts/plan/load.ts';
import { domainXml } from '../testbed/guest.ts';
import { DIR } from '../testbed/layout.ts';
import { driverContract } from '../contract/driver-contract.ts';
import { METHODS } from '../contract/faulty.ts';
import { tempDir } from '../helpers.ts';
import { planWith, ssh, useTestbed } from './helpers.ts';

/** plans/testbed.yaml narrowed to g1, hv1 -> hv2, which may be shut down (and forced off). */
const narrow = (p: Record<string, any>) => {
  p.vms = ['g1'];
  p.sources = ['hv1'];
  p.destinations = { hosts: ['hv2'] };
  p.migration = { ...p.migration, cold: { allow: ['g1'], shutdown_timeout_s: 30, force_off: true } };
};

describe('the libvirt testbed', () => {
  useTestbed();
  beforeAll(async () => {
    // g9 defined and never started (shut off); g3 suspended (paused).
    writeFileSync(`${DIR}/g9.xml`, domainXml('g9', 96));
    // With its disk: a shut-off guest moves cold with its disk (the contract moves it there and back).
    await ssh('hv1', 'virsh', 'vol-create-as', 'default', 'g9.qcow2', '16M', '--format', 'qcow2');
    await ssh('hv1', 'virsh', 'define', `${DIR}/g9.xml`);
    await ssh('hv1', 'virsh', 'suspend', 'g3');
  });

  const reports = tempDir('evac-contract-libvirt-');
  driverContract('libvirt', {
    open: async (o) => openDriver(loadPlan(planWith('contract', narrow)).plan, o),
    source: 'hv1',
    destination: 'hv2',
    vm: 'g1',
    states: [{ vm: 'g9', state: 'shutoff' }, { vm: 'g3', state: 'paused' }],
    plan: (name) => ({ loaded: loadPlan(planWith(name, narrow)), reportsDir: reports }),
    // Throws only: after a hang the guard settles the call through the same abort and recover as
    // after a throw, only later (the hang kinds are the guard's, covered on the simulator); each
    // hang here would cost its bound in real time and the tier minutes.
    faults: { methods: METHODS, kinds: ['throw'] },
    // A testbed live migration takes about 3 s and a cold one 10-20 s: a call that has not
    // answered in 5 s, or a migration in 2 minutes, has hung.
    limits: { callMs: 5000, migrationMs: () => 120_000, recoverMs: (w) => w + 60_000 },
    timeoutMs: 240_000,
  });
});
