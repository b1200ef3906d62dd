/** Test helpers: plans from objects, a CLI runner, and fleet builders. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { $ } from 'zx';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';

export const ROOT = new URL('..', import.meta.url).pathname;

/** Write a plan object to a temporary YAML file. */
export function planFile(plan: EvacuationPlan | Record<string, unknown>, dir = mkdtempSync(join(tmpdir(), 'evac-'))): string {
  const file = join(dir, `${String((plan as { name?: string }).name ?? 'plan')}.yaml`);
  writeFileSync(file, stringify(plan));
  return file;
}

/** Run the real CLI; never throws on a non-zero exit. */
export async function cli(...args: string[]) {
  const out = await $({ cwd: ROOT, nothrow: true, quiet: true, env: { ...process.env, NO_COLOR: '1' } })`node scripts/bin.mjs ${args}`;
  return { code: out.exitCode, stdout: out.stdout, stderr: out.stderr };
}
