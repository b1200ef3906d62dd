/** Read-only checks of one VM against one destination, from the fleet's own data (no I/O). */
import type { CheckResult } from '../fleet/driver.ts';
import { compareVersions, cpuCompatible } from '../fleet/cpu.ts';
import type { Host, Resources, Vm } from '../fleet/types.ts';

/** free = physical capacity minus what the destination commits now. */
export function fleetChecks(vm: Vm, source: Host, dest: Host, free: Resources): CheckResult[] {
  const checks: CheckResult[] = [];
  const add = (check: CheckResult['check'], ok: boolean, detail: string) => checks.push({ check, ok, detail });
  add('state', vm.state === 'running' || vm.state === 'paused', `domain is ${vm.state}`);
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
