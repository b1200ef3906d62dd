/**
 * The schema is the one source of plan defaults. Every `default` keyword of the schema is
 * listed below with how code shows it, and for a minimal plan the code gives exactly that
 * value; and no file under scripts/ holds a literal copy of a default's value.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { simFleet } from '../scripts/fleet/sim/fleet.ts';
import { SimDriver } from '../scripts/fleet/sim/driver.ts';
import type { Host, Vm } from '../scripts/fleet/types.ts';
import { withDefaults } from '../scripts/plan/defaults.ts';
import type { EvacuationPlan, SimFleet } from '../scripts/plan/plan-types.ts';
import { PLAN_SCHEMA } from '../scripts/plan/schema.ts';
import { rollingOf, type RollSettings } from '../scripts/rolling/roll.ts';
import { settingsOf, type Settings } from '../scripts/plan/settings.ts';
import { ROOT } from './helpers.ts';

type Node = { $ref?: string; allOf?: Node[]; properties?: Record<string, Node>; items?: Node; default?: unknown };

/** Every `default` in the schema by field path (a.b, list[].c), following $ref and allOf; `{}` that only opens a section is left out. */
function schemaDefaults(): Map<string, { value: unknown; prop: string }> {
  const out = new Map<string, { value: unknown; prop: string }>();
  const resolve = (n: Node): Node => (n.$ref ? resolve(n.$ref.split('/').slice(1).reduce<Record<string, unknown>>((s, k) => s[k] as Record<string, unknown>, PLAN_SCHEMA) as Node) : n);
  const walk = (raw: Node, path: string, prop: string) => {
    const n = resolve(raw);
    const parts = [n, ...(n.allOf ?? []).map(resolve)];
    const opensSection = parts.some((p) => p.properties);
    if (raw.default !== undefined && !(opensSection && JSON.stringify(raw.default) === '{}')) out.set(path, { value: raw.default, prop });
    for (const p of parts) {
      for (const [k, child] of Object.entries(p.properties ?? {})) walk(child, path ? `${path}.${k}` : k, k);
      if (p.items) walk(p.items, `${path}[]`, prop);
    }
  };
  walk(PLAN_SCHEMA as Node, '', '');
  return out;
}

const minimal: EvacuationPlan = { version: 1, name: 'minimal', fleet: { driver: 'sim' }, sources: ['a'] };
const minimalSim: SimFleet = { hosts: [{ name: 'a', vcpu: 8, memory_mib: 8192, disk_gib: 10 }], vms: [{ name: 'v', host: 'a', vcpu: 1, memory_mib: 512 }] };

/** What the code made of a minimal plan, where each default shows. */
interface Seen { settings: Settings; rolling: RollSettings; host: Host; vm: Vm; generated: ReturnType<typeof simFleet>; explicit: (path: string, value: unknown) => unknown }

/**
 * How code shows each default: the value it uses for a minimal plan, or, where only an outcome
 * shows it, that outcome (compared with the same outcome when the plan gives the schema's value),
 * or a reason why only the literal scan below guards it.
 */
const READERS: Record<string, ((s: Seen) => unknown) | { scanOnly: string }> = {
  kind: (s) => s.settings.kind,
  'fleet.driver': { scanOnly: 'required, so never defaulted; the default is for editors' },
  'fleet.sim.seed': (s) => s.generated,
  'fleet.sim.nic_mibps': (s) => s.host.nicMibps,
  'fleet.sim.stream_mibps': { scanOnly: 'SimDriver keeps it private' },
  'fleet.sim.hosts[].cpu_model': (s) => s.host.cpuModel,
  'fleet.sim.hosts[].hypervisor_version': (s) => s.host.hypervisor.version,
  'fleet.sim.vms[].disk_gib': (s) => s.vm.resources.disk_gib,
  'fleet.sim.vms[].storage': (s) => s.vm.storage,
  'fleet.sim.vms[].state': (s) => s.vm.state,
  'fleet.sim.vms[].dirty_mibps': (s) => s.vm.dirtyMibps,
  'fleet.sim.vms[].ignores_shutdown': { scanOnly: 'SimDriver keeps it private' },
  'fleet.sim.generate.cpu_models': (s) => s.generated,
  'fleet.sim.generate.local_storage_share': (s) => s.generated,
  'fleet.sim.generate.anti_affinity_groups': (s) => s.generated,
  'fleet.libvirt.user': { scanOnly: 'only shows on an SSH connection' },
  'fleet.libvirt.connect_timeout_s': { scanOnly: 'only shows on an SSH connection' },
  'fleet.libvirt.hosts[].port': { scanOnly: 'only shows on an SSH connection' },
  'fleet.openstack.request_timeout_s': { scanOnly: 'only shows on an API request' },
  'fleet.openstack.requests_per_second': { scanOnly: 'only shows on the pace of API requests' },
  'placement.policy': (s) => s.settings.policy,
  'placement.seed': (s) => s.settings.seed,
  'placement.effort': (s) => s.settings.effort,
  'placement.overcommit': (s) => s.settings.overcommit,
  'placement.reserve': (s) => s.settings.reserve,
  'placement.max_utilization': (s) => s.settings.maxUtilization,
  'placement.pinned': (s) => s.settings.pinned,
  'placement.assign': (s) => s.settings.assign,
  'placement.groups': (s) => s.settings.groups,
  'migration.mode': (s) => s.settings.mode,
  'migration.concurrency.total': (s) => s.settings.concurrency.total,
  'migration.concurrency.per_source': (s) => s.settings.concurrency.perSource,
  'migration.concurrency.per_destination': (s) => s.settings.concurrency.perDestination,
  'migration.completion_timeout_s_per_gib': (s) => s.settings.timeoutSPerGib,
  'migration.max_downtime_ms': (s) => s.settings.maxDowntimeMs,
  'migration.post_copy': (s) => s.settings.postCopy,
  'migration.auto_converge': (s) => s.settings.autoConverge,
  'migration.cold.allow': (s) => s.settings.cold.allow,
  'migration.cold.shutdown_timeout_s': (s) => s.settings.cold.shutdownTimeoutS,
  'migration.cold.force_off': (s) => s.settings.cold.forceOff,
  'rolling.wave': (s) => s.rolling.wave,
  'rolling.max_wave': (s) => s.rolling.max_wave,
  'rolling.order': (s) => s.rolling.order,
  'rolling.on_failure': (s) => s.rolling.on_failure,
  'rolling.return': (s) => s.rolling.return,
  'rolling.pinned': (s) => s.rolling.pinned,
  'rolling.checks.timeout_s': (s) => s.rolling.checks.timeout_s,
  'rolling.checks.interval_s': (s) => s.rolling.checks.interval_s,
  'rolling.hooks.timeout_s': (s) => s.rolling.hooks.timeout_s,
  'rolling.maintenance.timeout_s': (s) => s.rolling.maintenance?.timeout_s,
  'rolling.maintenance.on': (s) => s.rolling.maintenance?.on,
  'rolling.maintenance.simulate.duration_s': (s) => s.rolling.maintenance?.simulate?.duration_s,
};

/** Outcomes (the generated fleet) compared with the plan giving the default explicitly. */
const BY_OUTCOME = new Set(['fleet.sim.seed', 'fleet.sim.generate.cpu_models', 'fleet.sim.generate.local_storage_share', 'fleet.sim.generate.anti_affinity_groups']);
const generate = { hosts: 4, vms: 400 };

async function seen(): Promise<Seen> {
  const inv = await new SimDriver(minimalSim).inventory();
  if (!inv.ok) throw new Error('the simulated fleet did not answer');
  return {
    settings: settingsOf(minimal),
    rolling: rollingOf({ ...minimal, kind: 'rolling', rolling: { maintenance: { simulate: {} } } }),
    host: inv.inventory.hosts[0],
    vm: inv.inventory.vms[0],
    generated: simFleet({ generate }),
    explicit: (path, value) => {
      const key = path.split('.').at(-1)!;
      return simFleet(path.startsWith('fleet.sim.generate.') ? { generate: { ...generate, [key]: value } } : { [key]: value, generate });
    },
  };
}

describe('plan defaults live in the schema', () => {
  const defaults = schemaDefaults();

  it('every default of the schema is read by the code, and every reader listed is a default of the schema', () => {
    expect([...defaults.keys()].sort()).toEqual(Object.keys(READERS).sort());
  });

  it('for a minimal plan, the code uses exactly the values the schema gives, field by field', async () => {
    const s = await seen();
    for (const [path, { value }] of defaults) {
      const read = READERS[path];
      if (!read || 'scanOnly' in read) continue;
      const expected = BY_OUTCOME.has(path) ? s.explicit(path, value) : value;
      expect(read(s), `${path}: the schema's default is ${JSON.stringify(value)}`).toEqual(expected);
    }
  });

  it('settingsOf gives every field a value on a minimal plan, and leaves the plan it is given alone', () => {
    const plan = structuredClone(minimal);
    const settings = settingsOf(plan);
    expect(plan).toEqual(minimal);
    for (const [k, v] of Object.entries(settings)) expect(v, k).not.toBeUndefined();
    expect(withDefaults(plan).placement?.overcommit).toEqual(settings.overcommit);
  });

  it('a partial overcommit or reserve keeps the default of the resources it does not name', () => {
    const oc = defaults.get('placement.overcommit')!.value as Record<string, number>;
    const settings = settingsOf({ ...minimal, placement: { overcommit: { vcpu: 16, gpu: 1 }, reserve: { vcpu: 2 } } });
    expect(settings.overcommit).toEqual({ ...oc, vcpu: 16, gpu: 1 });
    expect(settings.reserve).toEqual({ ...(defaults.get('placement.reserve')!.value as object), vcpu: 2 });
  });

  it('no file under scripts/ repeats a default value as a literal (a ?? fallback, a defaults table, a default map written out)', () => {
    const files = sources(join(ROOT, 'scripts')).filter((f) => !f.endsWith('plan/plan-types.ts'));
    const text = new Map(files.map((f) => [relative(ROOT, f), readFileSync(f, 'utf8')]));
    const found: string[] = [];
    for (const [path, { value, prop }] of defaults) {
      for (const re of copiesOf(prop, value)) {
        for (const [file, src] of text) {
          const m = re.exec(src);
          if (m) found.push(`${file}: '${m[0].replace(/\s+/g, ' ')}' repeats the schema's default for ${path}`);
        }
      }
    }
    expect(found).toEqual([]);
  });
});

/**
 * Patterns that would be a copy of one default: `?? value`, `DEFAULT_X = value` or a DEFAULTS
 * table holding it, and a map default written out (`overcommit: { vcpu: 4`). A plan written in
 * code may well set a field to its default value, so `field: value` alone is not a copy. Values
 * too common to tell apart (false, 0, 1, empty lists and maps) are left to the field-by-field
 * check above.
 */
function copiesOf(prop: string, value: unknown): RegExp[] {
  if (Array.isArray(value)) return value.filter(distinct).map((v) => new RegExp(`\\?\\?\\s*\\[\\s*${literal(v)}`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).filter(([, v]) => distinct(v)).map(([k, v]) => new RegExp(`\\b${prop}\\s*:\\s*\\{[^}]*\\b${k}\\s*:\\s*${literal(v)}`));
  }
  if (!distinct(value)) return [];
  const lit = literal(value);
  return [
    new RegExp(`\\?\\?\\s*${lit}`),
    new RegExp(`default\\w*\\s*=\\s*(\\{[^}]*[:,]\\s*)?${lit}`, 'i'),
  ];
}

function distinct(v: unknown): boolean {
  return (typeof v === 'number' && v !== 0 && v !== 1) || (typeof v === 'string' && v.length > 0);
}

/** A value as source code writes it: numbers with or without _ separators, strings in either quotes. */
function literal(v: unknown): string {
  if (typeof v === 'number') return `${String(v).split('').map((c) => (c === '.' ? '\\.' : c)).join('_?')}(?![\\w.])`;
  return `['"\`]${String(v).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"\`]`;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}
