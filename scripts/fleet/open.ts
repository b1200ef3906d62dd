/** Picks the driver a plan names, loading only that one (the libvirt driver brings ssh2 with it). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { userError } from '../errors.ts';
import type { EvacuationPlan } from '../plan/plan-types.ts';
import type { Driver } from './driver.ts';

export interface OpenOptions {
  /** Where this plan's run state lives (the reports folder); without it, nothing is kept between processes. */
  reportsDir?: string;
  /** Continue from the state a previous process left (a resume, clear, moveback). */
  resume?: boolean;
  /** Epoch ms the evacuation began, for a wall clock that continues across a resume. */
  origin?: number;
  /** A resume: the journal's last moment on the driver's clock (a simulated clock never goes back before it). */
  since?: number;
  /** A resume whose journal shows the fleet was changed (fenced, planned, moved): a simulated fleet's state file must be there. */
  changedFleet?: boolean;
  /** A resume: when the journal's last change to the fleet (a migration's end) happened, on the driver's clock. */
  changedUntil?: number;
  /** Only reads the fleet (plan): a simulated fleet's state file is not locked. */
  readOnly?: boolean;
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
      // The simulator writes its state at its first change, as the journal does: a run to resume changed it, so the file must be there.
      if (opts.resume && opts.changedFleet && !existsSync(path)) {
        throw userError(`the simulated fleet's state file ${path} is gone, but the journal says an earlier run of '${plan.name}' changed the fleet`, [],
          `restore that file to resume; or start over from the plan's fleet by moving the journal away (${join(opts.reportsDir ?? '.', `${plan.name}.journal.jsonl`)}), knowing that what that run moved is forgotten`);
      }
      // A named state file is a fleet that persists; the default one only carries a run to its resume.
      return new SimDriver(sim, { path, restore: Boolean(sim.state_file) || opts.resume === true, ...(opts.since !== undefined ? { since: opts.since } : {}), ...(opts.readOnly ? { readOnly: true } : {}), ...(opts.changedUntil !== undefined ? { changedUntil: opts.changedUntil } : {}) });
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
