/**
 * The read-only preflight of planned moves: the generic checks (state, hosts, room, CPU line,
 * hypervisor version) computed here once, from what discovery saw, for every driver alike; then
 * each driver's own live checks (libvirt: peer reachability and its CPU comparison; Nova: the
 * compute service; sim: the hosts answer), whose answer replaces a generic one of the same name.
 */
import type { CheckResult, Driver, PreflightItem } from '../fleet/driver.ts';
import { compareVersions, cpuCompatible } from '../fleet/cpu.ts';
import { unmovable, usedByHost, type Host, type Inventory, type Resources, type Vm } from '../fleet/types.ts';

/**
 * Every item's checks: generic from the inventory, then the driver's own (asked only where both
 * hosts were seen). overcommit: the plan's (placement.overcommit), so that room is what the plan
 * lets a host commit (capacity x overcommit), not its physical capacity, which an overcommitted
 * host's guests already exceed.
 */
export async function checkMoves(items: PreflightItem[], inventory: Inventory, driver: Driver, overcommit: Resources = {}): Promise<CheckResult[][]> {
  const hosts = new Map(inventory.hosts.map((h) => [h.name, h]));
  const used = usedByHost(inventory.vms);
  const generic = items.map(({ vm, destination }): CheckResult[] => {
    const src = hosts.get(vm.host);
    const dst = hosts.get(destination);
    if (!src || !dst) return [{ check: 'reachable', ok: false, detail: `no answer from ${[vm.host, destination].filter((h) => !hosts.has(h)).join(', ')}` }];
    const free: Resources = {};
    for (const [k, cap] of Object.entries(dst.capacity)) free[k] = cap * (overcommit[k] ?? 1) - (used.get(destination)?.[k] ?? 0);
    return fleetChecks(vm, src, dst, free);
  });
  const asked = items.flatMap((item, i) => (generic[i][0]?.check === 'reachable' ? [] : [{ item, i }]));
  const own = asked.length > 0 ? await driver.preflight(asked.map((a) => a.item)) : [];
  asked.forEach(({ i }, j) => {
    for (const c of own[j] ?? []) {
      const at = generic[i].findIndex((g) => g.check === c.check);
      if (at >= 0) generic[i][at] = c;
      else generic[i].push(c);
    }
  });
  return generic;
}

/** The generic checks of one VM against one destination, from the fleet's own data (no I/O). free = capacity (times the plan's overcommit) minus what the destination commits now. */
export function fleetChecks(vm: Vm, source: Host, dest: Host, free: Resources): CheckResult[] {
  const checks: CheckResult[] = [];
  const add = (check: CheckResult['check'], ok: boolean, detail: string) => checks.push({ check, ok, detail });
  add('state', unmovable(vm.state) === undefined, unmovable(vm.state) ?? (vm.state === 'shutoff' ? 'shut off: moved cold, stays shut off' : `domain is ${vm.state}`));
  add('same-host', dest.name !== source.name && dest.uuid !== source.uuid,
    dest.uuid === source.uuid ? `destination has the source's host UUID ${dest.uuid}` : 'different hosts');
  const mem = vm.resources.memory_mib ?? 0;
  add('memory', (free.memory_mib ?? 0) >= mem, `needs ${mem} MiB, ${Math.floor(free.memory_mib ?? 0)} MiB free`);
  if (vm.storage === 'local') {
    const disk = vm.resources.disk_gib ?? 0;
    add('disk', (free.disk_gib ?? 0) >= disk, `needs ${disk} GiB, ${Math.floor(free.disk_gib ?? 0)} GiB free`);
  }
  add('cpu', cpuCompatible(vm.cpuModel, dest.cpuModel), `guest CPU ${vm.cpuModel} on host CPU ${dest.cpuModel}`);
  add('hypervisor', dest.hypervisor.type === source.hypervisor.type &&
    compareVersions(dest.hypervisor.version, source.hypervisor.version) >= 0,
    `${source.hypervisor.type} ${source.hypervisor.version} -> ${dest.hypervisor.type} ${dest.hypervisor.version}`);
  add('storage', true, vm.storage === 'local' ? 'local disks: block migration copies them' : 'shared storage');
  return checks;
}
