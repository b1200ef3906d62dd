/** Discovery: the fleet as it is now, split into sources, allowed destinations and who stays. */
import { EvacError, userError } from '../errors.ts';
import type { EvacuationPlan } from '../plan/plan-types.ts';
import { matchesDestinations } from '../plan/rules.ts';
import type { Driver } from './driver.ts';
import { describeFence, type Host, type Inventory, type Vm } from './types.ts';

export interface Snapshot {
  inventory: Inventory;
  sources: Host[];
  destinations: Host[];
  /** Every VM on a source host, in any state. */
  onSources: Vm[];
  /** VMs on destinations (they stay and take room). */
  residents: Vm[];
  warnings: string[];
  /** The driver's fixed cost per migration, seconds, its stream ceiling and per-host cap (Driver.setupS, streamMibps, perHostMigrations). */
  setupS?: number;
  /** Driver.coldS. */
  coldS?: { shutdown: number; boot: number };
  streamMibps?: number;
  perHostMigrations?: number;
}

/** What a refused login looks like, from Keystone or from SSH. */
const LOGIN = /HTTP 401|HTTP 403|authentication .*failed|credentials|Permission denied \(publickey|All configured authentication methods failed/i;

export async function discover(driver: Driver, plan: EvacuationPlan): Promise<Snapshot> {
  const got = await driver.inventory();
  if (!got.ok) {
    // A refused login is not a host that does not answer: say which it is.
    const login = LOGIN.test(got.detail);
    throw new EvacError(`cannot read the fleet: ${got.detail}`, 'fleet', [], login
      ? 'the login was refused: check the credentials (OpenStack: the clouds.yaml entry or the OS_* variables; libvirt: user and identity_files, and the key in the host\'s authorized_keys), then run again'
      : 'check that the hosts answer, then run again');
  }
  const inventory = got.inventory;
  const byName = new Map(inventory.hosts.map((h) => [h.name, h]));
  const down = new Map(inventory.unreachable.map((u) => [u.host, u.detail]));
  const warnings: string[] = [...inventory.notes ?? []];
  const sources: Host[] = [];
  for (const name of plan.sources ?? []) {
    const h = byName.get(name);
    if (h) sources.push(h);
    else if (down.has(name)) {
      throw new EvacError(`source host ${name} does not answer: ${down.get(name)}`, 'fleet', [], LOGIN.test(down.get(name) ?? '')
        ? `nothing was touched; the login was refused: check the user and identity_files of the plan and the key in ${name}'s authorized_keys`
        : `nothing was touched; bring ${name} back or remove it from sources`);
    } else throw userError(`source host ${name} is not in the fleet`, [], 'check the host name against the fleet');
  }
  for (const name of plan.destinations?.hosts ?? []) {
    if (down.has(name)) warnings.push(`destination ${name} does not answer (${down.get(name)}); it is left out`);
    else if (!byName.has(name)) throw userError(`destination host ${name} is not in the fleet`, [], 'check the host name against the fleet');
  }
  const destinations = inventory.hosts.filter((h) => {
    if (!matchesDestinations(plan, h.name, h.labels)) return false;
    // A host another plan drains is in maintenance: nothing goes there until its fence is lifted.
    if (h.fence && h.fence.plan !== plan.name && h.fence.role === 'source') {
      warnings.push(`destination ${h.name} is left out: it is fenced by ${describeFence(h.fence)}`);
      return false;
    }
    return true;
  });
  if (destinations.length === 0) {
    const fenced = inventory.hosts.filter((h) => matchesDestinations(plan, h.name, h.labels) && h.fence && h.fence.plan !== plan.name);
    if (fenced.length > 0) {
      throw new EvacError(`every destination is fenced for maintenance: ${fenced.map((h) => `${h.name} by ${describeFence(h.fence!)}`).join('; ')}`, 'held', [],
        `once the maintenance is over, lift the fences with \`evacuator clear <that plan>\`, then run again`);
    }
    throw new EvacError('no destination host answers', 'fleet', [], 'check the destinations in the plan and that they are up');
  }
  const vmNames = new Set(inventory.vms.map((v) => v.name));
  for (const name of plan.placement?.pinned ?? []) {
    if (!vmNames.has(name)) warnings.push(`pinned VM ${name} is not in the fleet`);
  }
  const sourceNames = new Set(plan.sources ?? []);
  const destNames = new Set(destinations.map((h) => h.name));
  return {
    inventory,
    sources,
    destinations,
    onSources: inventory.vms.filter((v) => sourceNames.has(v.host)),
    residents: [...inventory.vms.filter((v) => destNames.has(v.host)), ...partnersElsewhere(plan, inventory.vms, sourceNames, destNames)],
    warnings,
    ...(driver.setupS !== undefined ? { setupS: driver.setupS } : {}),
    ...(driver.coldS !== undefined ? { coldS: driver.coldS } : {}),
    ...(driver.streamMibps !== undefined ? { streamMibps: driver.streamMibps } : {}),
    ...(driver.perHostMigrations !== undefined ? { perHostMigrations: driver.perHostMigrations } : {}),
  };
}

/**
 * VMs on hosts that are neither sources nor destinations that share an affinity group with a VM on
 * the sources: they stay where they are, so the group is anchored there, and placement must know
 * it (a VM whose partner runs on a host out of reach cannot follow it, and is reported so rather
 * than moved away from it).
 */
function partnersElsewhere(plan: EvacuationPlan, vms: Vm[], sources: Set<string>, destinations: Set<string>): Vm[] {
  const declared = new Map<string, string>();
  for (const g of plan.placement?.groups ?? []) if (g.policy === 'affinity') for (const m of g.members) declared.set(m, g.name);
  const groupOf = (v: Vm) => v.affinity ?? declared.get(v.name);
  const moving = new Set(vms.filter((v) => sources.has(v.host)).map(groupOf).filter((g): g is string => g !== undefined));
  if (moving.size === 0) return [];
  return vms.filter((v) => !sources.has(v.host) && !destinations.has(v.host) && moving.has(groupOf(v) ?? ''));
}
