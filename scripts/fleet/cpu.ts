/**
 * CPU compatibility by libvirt model name: a guest CPU model runs on a host whose model is
 * the same or a later one of the same line. Unknown models only match themselves. The libvirt
 * driver asks libvirt itself (virsh hypervisor-cpu-compare); this table serves the sim and
 * the placement's first cut.
 */
const LINES: string[][] = [
  ['Nehalem', 'Westmere', 'SandyBridge', 'IvyBridge', 'Haswell', 'Broadwell', 'Skylake-Server',
    'Cascadelake-Server', 'Cooperlake', 'Icelake-Server', 'SapphireRapids', 'GraniteRapids'],
  ['Opteron_G4', 'Opteron_G5', 'EPYC', 'EPYC-Rome', 'EPYC-Milan', 'EPYC-Genoa'],
];

/** QEMU's baseline models (what a domain without a CPU model gets): every x86 host runs them. */
const BASELINE = new Set(['qemu64', 'kvm64', 'qemu32', 'kvm32']);

const RANK = new Map<string, { line: number; rank: number }>();
LINES.forEach((models, line) => models.forEach((m, rank) => RANK.set(m.toLowerCase(), { line, rank })));

/** Whether a guest with CPU model `guest` can run on a host with CPU model `host`. */
export function cpuCompatible(guest: string, host: string): boolean {
  if (guest.toLowerCase() === host.toLowerCase() || BASELINE.has(guest.toLowerCase())) return true;
  const g = RANK.get(guest.toLowerCase());
  const h = RANK.get(host.toLowerCase());
  return g !== undefined && h !== undefined && g.line === h.line && h.rank >= g.rank;
}

/** Compare dotted versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const key = `${a}\u0000${b}`;
  let d = versionOrder.get(key);
  if (d === undefined) {
    d = compareFresh(a, b);
    if (versionOrder.size < 10_000) versionOrder.set(key, d);
  }
  return d;
}

/** Placement asks the same few pairs millions of times on a big fleet. */
const versionOrder = new Map<string, number>();

function compareFresh(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
