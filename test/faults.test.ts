/**
 * Faults injected at random driver calls (throw, reject, hang, or hang after the call went out),
 * over random simulated fleets, through evacuate() in-process. Every run must end with run-end in
 * its journal and a documented exit code (with reports when it got past the refusals); every VM
 * must exist once, running if it ran before unless the report says it could not be settled, and
 * where the report says it is. EVAC_FAULT_RUNS sets how many (CI runs hundreds; the fast suite a few dozen).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EvacError, ExitCode } from '../scripts/errors.ts';
import { openDriver } from '../scripts/fleet/open.ts';
import { loadPlan } from '../scripts/plan/load.ts';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import { seeded, type Random } from '../scripts/random.ts';
import { evacuate } from '../scripts/runner/evacuate.ts';
import { readJournal } from '../scripts/runner/journal.ts';
import { readState } from '../scripts/fleet/sim/state.ts';
import { FAULTS, faulty, METHODS, type Fault, type Injected, type MethodName } from './contract/faulty.ts';
import { planFile, tempDir } from './helpers.ts';

const RUNS = Number(process.env.EVAC_FAULT_RUNS ?? 100);
const DOCUMENTED = new Set<number>(Object.values(ExitCode));


function randomPlan(seed: number, rng: Random): EvacuationPlan {
  const hosts = 5 + rng.int(0, 3);
  return {
    version: 1,
    name: `faults-${seed}`,
    fleet: { driver: 'sim', sim: { seed, generate: { hosts, vms: 12 + rng.int(0, 20), anti_affinity_groups: 2, local_storage_share: 0.4 } } },
    sources: rng.int(0, 1) === 0 ? ['hv-001'] : ['hv-001', 'hv-002'],
    migration: {
      mode: (['live', 'cold', 'live-then-cold'] as const)[rng.int(0, 2)],
      concurrency: { total: 1 + rng.int(0, 3), per_source: 2, per_destination: 2 },
      completion_timeout_s_per_gib: [800, 20][rng.int(0, 1)],
      cold: { allow: rng.int(0, 1) === 0 ? ['*'] : ['vm-0000*'] },
    },
  };
}

/** One to three faults: a method (migrations and look-ups more often), which call of it, which fault. */
function randomFaults(rng: Random): Map<string, Fault> {
  const weighted: MethodName[] = [...METHODS, 'liveMigrate', 'liveMigrate', 'coldMigrate', 'coldMigrate', 'locate', 'locate', 'inventory'];
  const faults = new Map<string, Fault>();
  for (let i = 0, n = 1 + rng.int(0, 2); i < n; i++) {
    faults.set(`${weighted[rng.int(0, weighted.length - 1)]}#${1 + rng.int(0, 4)}`, FAULTS[rng.int(0, FAULTS.length - 1)]);
  }
  return faults;
}

export async function faultyRun(seed: number) {
  const rng = seeded(seed * 7919 + 1);
  const plan = randomPlan(seed, rng);
  const faults = randomFaults(rng);
  const dir = tempDir('evac-faults-');
  const loaded = loadPlan(planFile(plan, dir));
  let injected: Injected[] = [];
  const before = await (await openDriver(loaded.plan)).inventory();
  if (!before.ok) throw new Error('the fleet did not read');
  const outcome = await evacuate(loaded, async (o) => {
    const f = faulty(await openDriver(loaded.plan, o), { at: (m, n) => faults.get(`${m}#${n}`) });
    injected = f.injected;
    return f.driver;
  }, () => {}, { reportsDir: dir }).then((done) => ({ done }), (error: unknown) => ({ error }));
  // Let any job a hung call left behind run out in the simulator's virtual time.
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  const what = `seed ${seed}, faults ${JSON.stringify(injected)}`;

  const lines = readJournal(join(dir, `${plan.name}.journal.jsonl`));
  const end = lines.at(-1);
  // A run refused before it changed the fleet writes nothing; any other ends its journal with run-end.
  if (!('error' in outcome) || lines.length > 0) expect(end?.kind, `${what}: the journal ends with run-end`).toBe('run-end');
  const report = join(dir, `${plan.name}.json`);
  if ('error' in outcome) {
    expect(outcome.error, `${what}: only refusals throw`).toBeInstanceOf(EvacError);
    const code = (outcome.error as EvacError).exitCode;
    expect([ExitCode.badInput, ExitCode.fleet, ExitCode.held], what).toContain(code);
    if (lines.length > 0) expect(end?.kind === 'run-end' && end.exitCode, what).toBe(code);
    expect(lines.some((l) => l.kind === 'move-start'), `${what}: refused before anything moved`).toBe(false);
  } else {
    expect(DOCUMENTED.has(outcome.done.exitCode), what).toBe(true);
    expect(end?.kind === 'run-end' && end.exitCode, what).toBe(outcome.done.exitCode);
    expect(existsSync(report), `${what}: reports written`).toBe(true);
  }

  // The fleet as the simulator keeps it: every VM once, none half-copied, running if it ran.
  // No file: the simulator never changed (it writes at the first change), which only a refusal may leave.
  if (!existsSync(join(dir, `${plan.name}.fleet.json`))) {
    expect('error' in outcome, `${what}: a run that went on changed the fleet`).toBe(true);
    return { injected, code: 'done' in outcome ? outcome.done.exitCode : (outcome.error as EvacError).exitCode };
  }
  const saved = readState(join(dir, `${plan.name}.fleet.json`)).saved;
  const now = new Map(saved.domains.map((d) => [d.vm.name, d]));
  expect([...now.keys()].sort(), `${what}: no VM lost or added`).toEqual(before.inventory.vms.map((v) => v.name).sort());
  expect(saved.domains.filter((d) => d.copy).map((d) => d.vm.name), `${what}: no half-made copy`).toEqual([]);
  if ('done' in outcome) {
    for (const v of outcome.done.report.vms) {
      const d = now.get(v.vm)!;
      if (v.host !== null) expect(d.vm.host, `${what}: ${v.vm} is where the report says`).toBe(v.host);
      const was = before.inventory.vms.find((x) => x.name === v.vm)!;
      if (was.state === 'running' && d.vm.state !== 'running') {
        expect(v.reason, `${what}: ${v.vm} is ${d.vm.state}, and the report says why`).toMatch(/could not settle|did not answer/);
      }
    }
  }
  return { injected, code: 'done' in outcome ? outcome.done.exitCode : (outcome.error as EvacError).exitCode };
}

describe('faults injected at random driver calls', () => {
  it(`${RUNS} runs: each ends with run-end and a documented exit code, every VM once and where the report says`, async () => {
    const codes = new Map<number, number>();
    const kinds = new Map<string, number>();
    for (let seed = 1; seed <= RUNS; seed++) {
      const { injected, code } = await faultyRun(seed);
      codes.set(code, (codes.get(code) ?? 0) + 1);
      for (const i of injected) kinds.set(`${i.method}:${i.fault}`, (kinds.get(`${i.method}:${i.fault}`) ?? 0) + 1);
    }
    console.log(`${RUNS} runs; exit codes ${JSON.stringify(Object.fromEntries(codes))}; faults that fired ${JSON.stringify(Object.fromEntries([...kinds].sort()))}`);
    expect([...kinds.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(RUNS / 2);
  }, 600_000);
});
