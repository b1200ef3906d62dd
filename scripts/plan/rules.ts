/** Semantic rules the schema cannot express: names that must exist, sets that must not overlap. */
import { withDefaults } from './defaults.ts';
import type { EvacuationPlan } from './plan-types.ts';
import type { FieldPath } from './positions.ts';
import { simFleet } from '../fleet/sim/fleet.ts';

export interface RuleProblem {
  path: FieldPath;
  message: string;
  severity: 'error' | 'warning';
}

/** Hosts and VMs the plan itself declares (the sim fleet); undefined where only discovery can tell. */
export interface Declared {
  hosts: { name: string; labels: Record<string, string> }[];
  /** Undefined where only discovery knows the VMs (libvirt). */
  vms?: string[];
}

export function declaredFleet(plan: EvacuationPlan): Declared | undefined {
  if (plan.fleet.driver === 'libvirt') {
    return plan.fleet.libvirt ? { hosts: plan.fleet.libvirt.hosts.map((h) => ({ name: h.name, labels: h.labels ?? {} })) } : undefined;
  }
  if (plan.fleet.driver !== 'sim' || !plan.fleet.sim) return undefined;
  const { hosts, vms } = simFleet(plan.fleet.sim);
  return { hosts: hosts.map((h) => ({ name: h.name, labels: h.labels ?? {} })), vms: vms.map((v) => v.name) };
}

/** Every semantic problem of a schema-valid plan. */
export function checkRules(plan: EvacuationPlan): RuleProblem[] {
  const out: RuleProblem[] = [];
  const error = (path: FieldPath, message: string) => out.push({ path, message, severity: 'error' });
  const warn = (path: FieldPath, message: string) => out.push({ path, message, severity: 'warning' });

  const sim = plan.fleet.sim;
  const end = plan.migration?.window_end;
  if (end !== undefined) {
    const wrong = impossibleDate(end);
    if (wrong) error(['migration', 'window_end'], `'${end}' is not a real date-time: ${wrong}`);
  }
  (plan.vms ?? []).forEach((p, i) => {
    // A backslash takes the next character as itself; one at the end has nothing to take.
    if (/(^|[^\\])(\\\\)*\\$/.test(p)) error(['vms', i], `pattern '${p}' ends with a lone backslash; write \\\\ for a backslash, \\* or \\? for a literal * or ?`);
  });
  if (plan.fleet.driver === 'libvirt') {
    if (!plan.fleet.libvirt) error(['fleet'], "driver 'libvirt' needs a 'libvirt' section with hosts");
    else {
      duplicates(plan.fleet.libvirt.hosts.map((h) => h.name), (i, n) => error(['fleet', 'libvirt', 'hosts', i, 'name'], `host '${n}' is declared twice`));
      // One machine under two names would be both a source and a destination.
      const lv = withDefaults(plan.fleet.libvirt, 'LibvirtFleet');
      duplicates(lv.hosts.map((h) => `${(h.address ?? h.name).toLowerCase()}:${h.port}`), (i, n) => error(['fleet', 'libvirt', 'hosts', i, 'address'], `address ${n} is given to two hosts: one machine under two names`));
    }
  }
  if (plan.fleet.driver === 'sim') {
    if (!sim) error(['fleet'], "driver 'sim' needs a 'sim' section with hosts and vms, or generate");
    else if (sim.generate && (sim.hosts || sim.vms)) error(['fleet', 'sim'], 'give either hosts/vms or generate, not both');
    else if (!sim.generate && !sim.hosts?.length) error(['fleet', 'sim'], 'no hosts: add hosts and vms, or generate');
  }
  if (sim && !sim.generate) {
    duplicates((sim.hosts ?? []).map((h) => h.name), (i, n) => error(['fleet', 'sim', 'hosts', i, 'name'], `host '${n}' is declared twice`));
    duplicates((sim.vms ?? []).map((v) => v.name), (i, n) => error(['fleet', 'sim', 'vms', i, 'name'], `VM '${n}' is declared twice`));
    const names = new Set((sim.hosts ?? []).map((h) => h.name));
    (sim.vms ?? []).forEach((v, i) => {
      if (!names.has(v.host)) error(['fleet', 'sim', 'vms', i, 'host'], unknown('host', v.host, [...names]));
    });
  }
  const fleet = out.some((p) => p.path.length <= 2) ? undefined : declaredFleet(plan);
  const hostNames = fleet?.hosts.map((h) => h.name);
  const vmNames = fleet?.vms;
  // Sets, so that a plan naming tens of thousands of VMs (placement.assign) is checked in linear time.
  const hostSet = hostNames && new Set(hostNames);
  const vmSet = vmNames && new Set(vmNames);
  const knownHost = (path: FieldPath, name: string) => {
    if (hostNames && !hostSet!.has(name)) error(path, unknown('host', name, hostNames));
  };
  const knownVm = (path: FieldPath, name: string, severity: 'error' | 'warning' = 'error') => {
    if (vmNames && !vmSet!.has(name)) (severity === 'error' ? error : warn)(path, unknown('VM', name, vmNames));
  };

  sim?.faults?.forEach((f, i) => {
    const at: FieldPath = ['fleet', 'sim', 'faults', i];
    if (f.kind === 'migration_error') {
      if (!f.vm) error(at, "fault 'migration_error' needs vm");
      else knownVm([...at, 'vm'], f.vm);
    } else if (!f.host) error(at, `fault '${f.kind}' needs host`);
    else knownHost([...at, 'host'], f.host);
    if (f.kind === 'crash' && f.at_s === undefined) error(at, "fault 'crash' needs at_s (seconds into the run)");
  });

  const sources: string[] = plan.sources ?? [];
  if (plan.kind === 'rebalance') {
    if (!plan.rebalance) error(['kind'], "a rebalance needs a 'rebalance' section with its target");
    if (plan.sources) error(['sources'], 'a rebalance has no sources: its scope is destinations (hosts, selector, exclude)');
  } else if (plan.kind === 'rolling') {
    if (plan.rebalance) error(['rebalance'], "'rebalance' applies only to kind: rebalance");
    checkRolling(plan, fleet, error, warn, knownHost);
  } else {
    if (!plan.sources) error([], "missing 'sources': the hosts to empty (or kind: rebalance)");
    if (plan.rebalance) error(['rebalance'], "'rebalance' applies only to kind: rebalance");
  }
  if (plan.rolling && plan.kind !== 'rolling') error(['rolling'], "'rolling' applies only to kind: rolling");
  plan.placement?.prefer?.forEach((h, i) => knownHost(['placement', 'prefer', i], h));
  duplicates(sources, (i, n) => error(['sources', i], `source '${n}' is listed twice`));
  sources.forEach((s, i) => knownHost(['sources', i], s));
  const dest = plan.destinations;
  dest?.hosts?.forEach((h, i) => {
    knownHost(['destinations', 'hosts', i], h);
    if (sources.includes(h) && plan.kind !== 'rolling') error(['destinations', 'hosts', i], `'${h}' is both a source and a destination; a host under maintenance cannot receive VMs`);
  });
  duplicates(dest?.hosts ?? [], (i, n) => error(['destinations', 'hosts', i], `destination '${n}' is listed twice`));
  dest?.exclude?.forEach((h, i) => knownHost(['destinations', 'exclude', i], h));
  if (fleet) {
    const candidates = fleet.hosts.filter((h) => matchesDestinations(plan, h.name, h.labels));
    if (dest?.selector && !fleet.hosts.some((h) => labelsMatch(h.labels, dest.selector!))) {
      error(['destinations', 'selector'], `selector ${JSON.stringify(dest.selector)} matches no host`);
    } else if (candidates.length === 0) {
      error(['destinations'], 'no destination host is left after sources and exclusions; add destinations');
    }
  }

  const c = plan.migration?.concurrency;
  for (const k of ['total', 'per_source', 'per_destination'] as const) {
    const v = c?.[k];
    if (typeof v === 'number' && v < 1) {
      error(['migration', 'concurrency', k], `must be at least 1 (got ${v}); 1 means one migration at a time`);
    }
  }
  plan.placement?.pinned?.forEach((v, i) => knownVm(['placement', 'pinned', i], v));
  for (const [vm, host] of Object.entries(plan.placement?.assign ?? {})) {
    knownVm(['placement', 'assign'], vm);
    if (fleet && !fleet.hosts.some((h) => h.name === host)) error(['placement', 'assign', vm], unknown('host', host, fleet.hosts.map((h) => h.name)));
    else if (!matchesDestinations(plan, host, fleet?.hosts.find((h) => h.name === host)?.labels ?? {})) {
      error(['placement', 'assign', vm], `'${host}' is not one of the plan's destinations`);
    }
  }
  plan.placement?.groups?.forEach((g, i) => g.members.forEach((m, j) => knownVm(['placement', 'groups', i, 'members', j], m)));
  duplicates(plan.placement?.groups?.map((g) => g.name) ?? [], (i, n) => error(['placement', 'groups', i, 'name'], `group '${n}' is declared twice`));
  return out;
}

/** A rolling plan's own rules: hosts to maintain, a step that fits the driver, names that exist. */
function checkRolling(plan: EvacuationPlan, fleet: Declared | undefined, error: (p: FieldPath, m: string) => void, warn: (p: FieldPath, m: string) => void, knownHost: (p: FieldPath, n: string) => void): void {
  const r = plan.rolling;
  if (!r) return error(['kind'], "a rolling plan needs a 'rolling' section with its maintenance step");
  if (!plan.sources && !r.selector) error(['rolling'], "no hosts to maintain: list them in 'sources', or give rolling.selector");
  if (fleet && r.selector && !fleet.hosts.some((h) => labelsMatch(h.labels, r.selector!))) error(['rolling', 'selector'], `selector ${JSON.stringify(r.selector)} matches no host`);
  const m = r.maintenance;
  if (!m) error(['rolling'], "missing 'maintenance': the step that maintains each host (command, or simulate on the simulated fleet)");
  else {
    const sim = plan.fleet.driver === 'sim';
    if (!m.command && !m.simulate) error(['rolling', 'maintenance'], sim ? 'give command (run per host) or simulate' : 'give command: the program and its arguments, run per host');
    if (m.command && m.simulate) error(['rolling', 'maintenance'], 'give command or simulate, not both');
    if (m.simulate && !sim) error(['rolling', 'maintenance', 'simulate'], "simulate is for the simulated fleet (driver: sim); give command");
    m.simulate?.fail?.forEach((h, i) => knownHost(['rolling', 'maintenance', 'simulate', 'fail', i], h));
    if (m.on === 'host' && plan.fleet.driver !== 'libvirt') error(['rolling', 'maintenance', 'on'], "on: host runs the command over the libvirt driver's SSH; with this driver, run it locally (on: local) and reach the host from the command");
    if (m.on === 'host' && !m.command) error(['rolling', 'maintenance', 'on'], 'on: host needs command');
  }
  if (r.failure_domain && fleet && !fleet.hosts.some((h) => r.failure_domain! in h.labels)) {
    warn(['rolling', 'failure_domain'], `no host has the label '${r.failure_domain}': every host counts as its own failure domain`);
  }
  if (typeof r.wave === 'number' && r.max_wave !== undefined) warn(['rolling', 'max_wave'], 'max_wave applies only to wave: auto');
}

/** Whether a host is an allowed destination by the plan's list, selector and exclusions. */
export function matchesDestinations(plan: EvacuationPlan, host: string, labels: Record<string, string>): boolean {
  const d = plan.destinations;
  // A rolling plan's hosts take VMs too, in the waves they are not in (the roll passes each wave its destinations).
  if ((plan.kind !== 'rolling' && plan.sources?.includes(host)) || d?.exclude?.includes(host)) return false;
  if (!d?.hosts && !d?.selector) return true;
  return (d.hosts?.includes(host) ?? false) || (d.selector !== undefined && labelsMatch(labels, d.selector));
}

export function labelsMatch(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function duplicates(names: string[], report: (index: number, name: string) => void): void {
  const seen = new Set<string>();
  names.forEach((n, i) => (seen.has(n) ? report(i, n) : seen.add(n)));
}

function unknown(kind: string, name: string, known: string[]): string {
  const near = closest(name, known);
  return `unknown ${kind} '${name}'${near ? `; did you mean '${near}'?` : ''}`;
}

/** The known name nearest to `name` by edit distance, when it is close. */
function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const k of known.length > 5000 ? [] : known) {
    const d = editDistance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** Why an ISO 8601 date-time (as the schema's pattern shapes it) names no real moment, or undefined when it does. */
export function impossibleDate(text: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|([+-])(\d{2}):(\d{2}))$/.exec(text);
  if (!m) return 'write it as 2026-11-28T06:00:00+01:00';
  const [y, mo, d, h, mi, se = '0', , oh = '0', om = '0'] = m.slice(1);
  const year = Number(y);
  const month = Number(mo);
  const days = [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (month < 1 || month > 12) return `month ${month} does not exist`;
  if (Number(d) < 1 || Number(d) > days[month - 1]) return `${['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'][month - 1]} ${year} has ${days[month - 1]} days`;
  if (Number(h) > 23) return `hour ${Number(h)} does not exist (00 to 23)`;
  if (Number(mi) > 59) return `minute ${Number(mi)} does not exist (00 to 59)`;
  if (Number(se) > 59) return `second ${Number(se)} does not exist (00 to 59)`;
  if (Number(oh) > 14 || Number(om) > 59) return `offset ${oh}:${om} does not exist (at most 14:00)`;
  if (!Number.isFinite(Date.parse(text))) return 'it cannot be read as a moment';
  return undefined;
}
