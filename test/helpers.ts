/** Test helpers: plans from objects, a CLI runner, and fleet builders. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { $ } from 'zx';
import { demandOf, usedByHost, type Resources } from '../scripts/fleet/types.ts';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import type { Line } from '../scripts/runner/journal.ts';

export const ROOT = new URL('..', import.meta.url).pathname;

/** Write a plan object to a temporary YAML file. */
export function planFile(plan: EvacuationPlan | Record<string, unknown>, dir = tempDir()): string {
  const file = join(dir, `${String((plan as { name?: string }).name ?? 'plan')}.yaml`);
  writeFileSync(file, stringify(plan));
  return file;
}

/** Run the real CLI; never throws on a non-zero exit. */
export async function cli(...args: string[]) {
  const out = await $({ cwd: ROOT, nothrow: true, quiet: true, env: { ...process.env, NO_COLOR: '1' } })`node dist/evacuator.js ${args}`;
  return { code: out.exitCode, stdout: out.stdout, stderr: out.stderr };
}

/**
 * Replays a journal's migrations against the fleet it planned from: a VM holds room on its
 * destination from its move's start, and on its source until the move ends well. Returns every
 * moment a host went past its limit ((capacity - reserve) x overcommit), as text.
 */
export function overfills(lines: Line[], settings: { overcommit: Resources; reserve: Resources }): string[] {
  const planned = lines.find((l): l is Extract<Line, { kind: 'planned' }> => l.kind === 'planned');
  if (!planned) return ['no planned line'];
  const used = usedByHost(planned.inventory.vms);
  const demand = new Map(planned.inventory.vms.map((v) => [v.name, demandOf(v)]));
  const limit = new Map(planned.inventory.hosts.map((h) => [h.name, Object.fromEntries(Object.entries(h.capacity).map(([k, c]) => [k, (c - (settings.reserve[k] ?? 0)) * (settings.overcommit[k] ?? 1)]))]));
  const add = (host: string, vm: string, sign: number) => {
    const u = used.get(host) ?? {};
    for (const [k, v] of Object.entries(demand.get(vm) ?? {})) u[k] = (u[k] ?? 0) + sign * v;
    used.set(host, u);
  };
  const out: string[] = [];
  for (const l of lines) {
    if (l.kind === 'move-start') {
      add(l.destination, l.vm, 1);
      for (const [k, v] of Object.entries(used.get(l.destination) ?? {})) {
        const lim = limit.get(l.destination)?.[k];
        if (lim !== undefined && v > lim + 1e-6 && (demand.get(l.vm)?.[k] ?? 0) > 0) out.push(`${l.destination} ${k} ${v} > ${lim} when ${l.vm} started (seq ${l.seq})`);
      }
    }
    if (l.kind === 'move-end') add(l.outcome === 'ok' ? l.source : l.destination, l.vm, -1);
  }
  return out;
}

const made: string[] = [];
/** A temporary folder removed when the test file ends. */
export function tempDir(prefix = 'evac-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});
