/**
 * Why a VM fits nowhere, grouped into readable lines: per destination the first rule that refuses
 * it, or every resource it lacks there. A host short of two resources appears in both lines.
 */
import type { Host, Resources, Vm } from '../fleet/types.ts';
import type { Ledger, Refusal } from './ledger.ts';

export interface ReasonGroup {
  /** capacity, cpu, hypervisor, anti-affinity, affinity, avoid */
  kind: Refusal['kind'];
  /** e.g. "memory_mib: needs 16384 MiB, at most 8192 MiB free after reserve on 12 hosts" */
  text: string;
  hosts: string[];
}

const UNITS: Record<string, string> = { memory_mib: ' MiB', disk_gib: ' GiB' };

export function explain(vms: Vm[], destinations: Host[], ledger: Ledger, demand: Resources): ReasonGroup[] {
  if (destinations.length === 0) return [{ kind: 'avoid', text: 'no destination host is available', hosts: [] }];
  const byKey = new Map<string, { refusals: Refusal[]; hosts: string[] }>();
  for (const h of destinations) {
    const first = ledger.refuse(vms, h, demand);
    if (!first) continue;
    // Capacity: every resource the host lacks, so the operator sees all that would have to change.
    for (const r of first.kind === 'capacity' ? ledger.shortfalls(h, demand) : [first]) {
      const g = byKey.get(keyOf(r)) ?? { refusals: [], hosts: [] };
      g.refusals.push(r);
      g.hosts.push(h.name);
      byKey.set(keyOf(r), g);
    }
  }
  return [...byKey.values()]
    .map(({ refusals, hosts }) => ({
      kind: refusals[0].kind,
      text: `${describe(refusals, vms.length > 1)} on ${hosts.length} host${hosts.length === 1 ? '' : 's'}`,
      hosts,
    }))
    .sort((a, b) => b.hosts.length - a.hosts.length || a.text.localeCompare(b.text));
}

function keyOf(r: Refusal): string {
  switch (r.kind) {
    case 'capacity': return `capacity:${r.resource}`;
    case 'anti-affinity': return `anti:${r.group}`;
    case 'affinity': return `aff:${r.group}`;
    case 'avoid': return `avoid:${r.detail}`;
    case 'cpu': return `cpu:${r.host}`;
    case 'hypervisor': return `hv:${r.host}`;
  }
}

/** One line for refusals sharing a key; capacity says the most free found among them. */
function describe(refusals: Refusal[], asGroup: boolean): string {
  const r = refusals[0];
  switch (r.kind) {
    case 'capacity': {
      const most = Math.max(0, ...refusals.map((x) => (x.kind === 'capacity' ? x.free : 0)));
      const unit = UNITS[r.resource] ?? '';
      return `${r.resource}: ${asGroup ? 'its affinity group needs' : 'needs'} ${fmt(r.needs)}${unit}, at most ${fmt(most)}${unit} free after reserve`;
    }
    case 'cpu': return `cpu: guest CPU ${r.guest} cannot run on ${r.host}`;
    case 'hypervisor': return `hypervisor: ${r.host} is older than the source's ${r.source}`;
    case 'anti-affinity': {
      const members = [...new Set(refusals.map((x) => (x.kind === 'anti-affinity' ? x.member : '')))];
      const named = members.length > 4 ? `${members.slice(0, 4).join(', ')} and ${members.length - 4} more` : members.join(', ');
      return `anti-affinity (group ${r.group}) with ${named}`;
    }
    case 'affinity': return `affinity: group ${r.group} is on ${r.host}`;
    case 'avoid': return r.detail;
  }
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** One refusal of one VM by one host, as a line. */
export function explainRefusal(r: Refusal): string {
  return describe([r], false);
}
