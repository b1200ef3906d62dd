/**
 * One name per VM across the fleet. Hypervisors do not make names unique (Nova across projects,
 * libvirt across hosts): a name two VMs share gets `@` and the VM's id prefix, and where that
 * still meets another VM's name (a server named `dup@df748358` beside two named `dup`), both get
 * the whole id, then the host: every VM evacuator plans, moves and reports is one VM.
 */
export function uniqueNames<T extends { name: string; id: string; host: string }>(items: readonly T[]): Map<T, string> {
  const out = new Map(items.map((i) => [i, i.name] as const));
  const suffixes = [(i: T) => i.id.slice(0, 8), (i: T) => i.id, (i: T) => i.host];
  for (let round = 0; ; round++) {
    const count = new Map<string, number>();
    for (const n of out.values()) count.set(n, (count.get(n) ?? 0) + 1);
    const clash = items.filter((i) => count.get(out.get(i)!)! > 1);
    if (clash.length === 0) return out;
    const suffix = suffixes[Math.min(round, suffixes.length - 1)];
    // Past the host, a counter: two entries alike in name, id and host are still two names.
    for (const [k, i] of clash.entries()) out.set(i, `${out.get(i)}@${round < suffixes.length ? suffix(i) : k}`);
  }
}
