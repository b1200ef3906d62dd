/** Picks the driver a plan names, loading only that one (the libvirt driver brings ssh2 with it). */
import { join } from 'node:path';
import type { EvacuationPlan } from '../plan/plan-types.ts';
import type { Driver } from './driver.ts';

export interface OpenOptions {
  /** Where this plan's run state lives (the reports folder); without it, nothing is kept between processes. */
  reportsDir?: string;
  /** Continue from the state a previous process left (a resume, clear, moveback). */
  resume?: boolean;
  /** Epoch ms the evacuation began, for a wall clock that continues across a resume. */
  origin?: number;
}

/** The simulated fleet's state file for a plan: its own, or a shared one named in the plan. */
export function simStatePath(plan: EvacuationPlan, reportsDir: string): string {
  return plan.fleet.sim?.state_file ?? join(reportsDir, `${plan.name}.fleet.json`);
}

/** The driver the plan names, set up for this process; its module is imported here, on first use. */
export async function openDriver(plan: EvacuationPlan, opts: OpenOptions = {}): Promise<Driver> {
  switch (plan.fleet.driver) {
    case 'sim': {
      const { SimDriver } = await import('./sim/driver.ts');
      const sim = plan.fleet.sim ?? {};
      if (opts.reportsDir === undefined && !sim.state_file) return new SimDriver(sim);
      const path = simStatePath(plan, opts.reportsDir ?? '.');
      // A named state file is a fleet that persists; the default one only carries a run to its resume.
      return new SimDriver(sim, { path, restore: Boolean(sim.state_file) || opts.resume === true });
    }
    case 'libvirt': {
      const { LibvirtDriver } = await import('./libvirt/driver.ts');
      // The plan rules require the libvirt section for this driver.
      // What a failed move could not remove from a silent destination is kept beside the reports, for a later run to clean.
      return new LibvirtDriver(plan.fleet.libvirt!, opts.origin, opts.reportsDir === undefined ? undefined : join(opts.reportsDir, 'libvirt-leftovers.json'));
    }
    case 'openstack': {
      const { OpenStackDriver } = await import('./openstack/driver.ts');
      return new OpenStackDriver(plan.fleet.openstack ?? {}, opts.origin);
    }
  }
}
