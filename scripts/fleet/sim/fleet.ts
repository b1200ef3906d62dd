/** Builds the simulated fleet from the plan: inline hosts and VMs, or generated from a seed. */
import { withDefaults } from '../../plan/defaults.ts';
import type { SimFleet, SimHost, SimVm } from '../../plan/plan-types.ts';
import { seeded, type Random } from '../../random.ts';

const SHAPES = [
  { vcpu: 1, memory_mib: 2048, disk_gib: 20 },
  { vcpu: 2, memory_mib: 4096, disk_gib: 40 },
  { vcpu: 4, memory_mib: 8192, disk_gib: 80 },
  { vcpu: 8, memory_mib: 16384, disk_gib: 160 },
  { vcpu: 16, memory_mib: 32768, disk_gib: 320 },
];

/** A VM size for a generated fleet, each equally likely (the index is a draw of 0-9 halved). */
export function randomShape(rng: Random) {
  return SHAPES[Math.min(rng.int(0, 9) >> 1, SHAPES.length - 1)];
}

/**
 * The inline fleet as given, or a generated one: hv-001.. with vm-00001.., filled to about 45% of
 * memory. Either way every host and VM field the schema gives a default has it (the `!`s).
 */
export function simFleet(given: SimFleet): { hosts: SimHost[]; vms: SimVm[] } {
  const sim = withDefaults(given, 'SimFleet');
  if (!sim.generate) return { hosts: sim.hosts ?? [], vms: sim.vms ?? [] };
  const g = sim.generate;
  const rng = seeded(sim.seed!);
  const models = g.cpu_models!;
  const width = String(g.hosts).length;
  const hosts: SimHost[] = Array.from({ length: g.hosts }, (_, i) => ({
    name: `hv-${String(i + 1).padStart(Math.max(3, width), '0')}`,
    vcpu: 64,
    memory_mib: 262144,
    disk_gib: 4000,
    cpu_model: models[i % models.length],
    labels: { rack: `r${Math.floor(i / 10) + 1}` },
  }));
  const localShare = g.local_storage_share!;
  const groups = g.anti_affinity_groups!;
  const vmWidth = Math.max(5, String(g.vms).length);
  const vms: SimVm[] = [];
  for (let i = 0; i < g.vms; i++) {
    const shape = randomShape(rng);
    const host = hosts[i % hosts.length];
    const vm: SimVm = {
      name: `vm-${String(i + 1).padStart(vmWidth, '0')}`,
      host: host.name,
      ...shape,
      storage: rng.int(0, 999) < localShare * 1000 ? 'local' : 'shared',
      dirty_mibps: rng.int(1, 60),
      resident_mib: Math.round(shape.memory_mib * (0.3 + rng.int(0, 60) / 100)),
    };
    if (groups > 0 && rng.int(0, 3) === 0) vm.anti_affinity = `group-${rng.int(1, groups)}`;
    vms.push(vm);
  }
  const filled = withDefaults({ hosts, vms }, 'SimFleet');
  return { hosts: filled.hosts!, vms: filled.vms! };
}
