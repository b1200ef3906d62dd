/** Picks the driver a plan names. */
import type { EvacuationPlan } from '../plan/plan-types.ts';
import type { Driver } from './driver.ts';
import { LibvirtDriver } from './libvirt/driver.ts';
import { SimDriver } from './sim/driver.ts';

export function openDriver(plan: EvacuationPlan): Driver {
  switch (plan.fleet.driver) {
    case 'sim':
      return new SimDriver(plan.fleet.sim ?? {});
    case 'libvirt':
      // The plan rules require the libvirt section for this driver.
      return new LibvirtDriver(plan.fleet.libvirt!);
  }
}
