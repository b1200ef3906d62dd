/**
 * Runs killed with SIGKILL at a random journal step (no cleanup at all), then resumed, on
 * simulated fleets with random injected failures (migration errors, a destination that dies,
 * deadlines that force cold fallbacks). After each: every VM exists exactly once, on its source
 * or on a destination the journal sent it to, running if it ran before; no copy is left half-made;
 * every journaled start has an end; the journal's final word on each VM and the report agree
 * with the fleet. EVAC_CRASH_RUNS sets how many (CI runs hundreds; the fast suite a few).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import { seeded, type Random } from '../scripts/random.ts';
import { chainOf, KILL_AFTER_ENV, readJournal, type Line } from '../scripts/runner/journal.ts';
import type { Report } from '../scripts/report/build.ts';
import { readState } from '../scripts/fleet/sim/state.ts';
import { planFile, ROOT, tempDir } from './helpers.ts';

const RUNS = Number(process.env.EVAC_CRASH_RUNS ?? 6);


function randomPlan(seed: number, rng: Random): EvacuationPlan {
  const vms = 30 + rng.int(0, 12);
  const faults: NonNullable<NonNullable<EvacuationPlan['fleet']['sim']>['faults']> = [];
  for (let i = 0; i < rng.int(0, 3); i++) faults.push({ kind: 'migration_error', vm: `vm-${String(rng.int(1, vms)).padStart(5, '0')}` });
  if (rng.int(0, 2) === 0) faults.push({ kind: 'crash', host: `hv-00${rng.int(3, 6)}`, at_s: rng.int(5, 200) });
  return {
    version: 1,
    name: `crash-${seed}`,
    fleet: { driver: 'sim', sim: { seed, generate: { hosts: 6, vms, anti_affinity_groups: 2, local_storage_share: 0.4 }, faults } },
    sources: ['hv-001', 'hv-002'],
    migration: {
      // A third of the plans move everything cold, so kills land in shutdowns, copies and clean-ups too.
      mode: rng.int(0, 2) === 0 ? 'cold' : 'live-then-cold',
      concurrency: { total: 1 + rng.int(0, 3), per_source: 2, per_destination: 2 },
      // Short deadlines for some plans: live attempts time out and fall back to cold.
      completion_timeout_s_per_gib: [800, 20, 5][rng.int(0, 2)],
      cold: { allow: rng.int(0, 1) === 0 ? ['*'] : ['vm-0000*', 'vm-0001*', 'vm-0002*'] },
    },
  };
}

const run = (file: string, reports: string, killAfter?: number, resume = false) =>
  $({ cwd: ROOT, nothrow: true, quiet: true, env: { ...process.env, NO_COLOR: '1', ...(killAfter ? { [KILL_AFTER_ENV]: String(killAfter) } : {}) } })`node dist/evacuator.js run ${file} --reports ${reports} ${resume ? ['--resume'] : []}`;

/** One generator for every run's choices (neighbouring seeds give xoroshiro correlated first draws). */
const master = seeded(20261124);

async function crashAndResume(seed: number) {
  const rng = seeded(master.int(1, 2 ** 30));
  for (let i = 0; i < 4; i++) rng.int(0, 1);
  const plan = randomPlan(seed, rng);
  const reports = tempDir('evac-crash-');
  const file = planFile(plan, reports);
  const first = await run(file, reports, rng.int(2, 80));
  // Some resumes are killed again before the last one runs to its end.
  let kills = first.exitCode === null ? 1 : 0;
  if (kills > 0 && rng.int(0, 3) === 0) kills += (await run(file, reports, readJournal(`${reports}/${plan.name}.journal.jsonl`).length + rng.int(1, 40), true)).exitCode === null ? 1 : 0;
  const last = await run(file, reports, undefined, kills > 0);
  return { plan, reports, kills, last };
}

function check(plan: EvacuationPlan, reports: string) {
  const fleet = readState(join(reports, `${plan.name}.fleet.json`)).saved;
  const report = JSON.parse(readFileSync(join(reports, `${plan.name}.json`), 'utf8')) as Report;
  const lines = readJournal(join(reports, `${plan.name}.journal.jsonl`));
  const chain = chainOf(lines)!;
  const sent = new Map<string, Set<string>>();
  for (const l of lines) if (l.kind === 'move-start') sent.set(l.vm, (sent.get(l.vm) ?? new Set()).add(l.destination));
  const names = fleet.domains.map((d) => d.vm.name);
  expect(new Set(names).size, 'every VM exactly once').toBe(names.length);
  const down = new Set(fleet.down);
  const onSources = fleet.domains.filter((d) => plan.sources!.includes(d.vm.host) || sent.has(d.vm.name));
  for (const d of onSources) {
    const { name, host, state } = d.vm;
    expect(d.copy, `${name}: no half-made copy`).toBeUndefined();
    const allowed = [...sent.get(name) ?? []];
    if (!plan.sources!.includes(host)) expect(allowed, `${name} on ${host}`).toContain(host);
    if (!down.has(host)) expect(state, `${name} on ${host}`).toBe('running');
    const r = report.vms.find((v) => v.vm === name);
    expect(r, `${name} in the report`).toBeDefined();
    expect(r!.host, `${name}: report and fleet`).toBe(host);
    expect(chain.results.get(name)?.host, `${name}: journal and fleet`).toBe(host);
    expect(chain.results.get(name)?.status, `${name}: journal and report`).toBe(r!.status);
  }
  expect(chain.inFlight, 'every start has an end').toEqual([]);
  expect(report.vms.length).toBe(onSources.length);
  const ends = lines.filter((l): l is Line & { kind: 'run-end' } => l.kind === 'run-end');
  expect(ends.at(-1)?.exitCode).toBe(report.exitCode);
}

describe('killed and resumed runs on the simulated fleet', () => {
  it(`${RUNS} runs killed at a random journal step, then resumed: no VM lost or doubled, journal and report agree`, async () => {
    const limit = pLimit(2);
    let killed = 0;
    const settled = new Map<string, number>();
    await Promise.all(Array.from({ length: RUNS }, (_, i) => limit(async () => {
      const { plan, reports, kills, last } = await crashAndResume(i + 1);
      killed += kills > 0 ? 1 : 0;
      for (const l of readJournal(join(reports, `${plan.name}.journal.jsonl`))) {
        if (l.kind === 'recovered') {
          const key = `${l.method} ${l.action.split(':')[0]}`;
          settled.set(key, (settled.get(key) ?? 0) + 1);
        }
      }
      expect([0, 3], `${plan.name}: ${last.stderr}`).toContain(last.exitCode);
      try {
        check(plan, reports);
      } catch (e) {
        (e as Error).message = `${plan.name} (${reports}, killed ${kills}x): ${(e as Error).message}`;
        throw e;
      }
    })));
    // Most kill points land inside the run, not after it.
    expect(killed).toBeGreaterThan(RUNS / 2);
    console.log(`${RUNS} runs, ${killed} killed; migrations in flight at the kill, settled on resume: ${JSON.stringify(Object.fromEntries([...settled].sort()))}`);
  }, 60_000 + RUNS * 3_000);
});

const SIGNAL_RUNS = Number(process.env.EVAC_SIGNAL_RUNS ?? 4);

describe('real signals at random moments on the simulated fleet', () => {
  it(`${SIGNAL_RUNS} runs sent SIGINT, SIGTERM (once or twice) or SIGKILL at a random time, then resumed: every VM once, times never go back, report, journal and fleet agree`, async () => {
    const limit = pLimit(2);
    const seen = new Map<string, number>();
    await Promise.all(Array.from({ length: SIGNAL_RUNS }, (_, i) => limit(async () => {
      const rng = seeded(900 + i);
      const plan = randomPlan(500 + i, rng);
      plan.name = `signal-${i + 1}`;
      const reports = tempDir('evac-signal-');
      const file = planFile(plan, reports);
      const child = run(file, reports);
      const signal = (['SIGINT', 'SIGTERM', 'SIGKILL'] as const)[rng.int(0, 2)];
      const twice = signal !== 'SIGKILL' && rng.int(0, 1) === 1;
      // A process that already ended cannot be signalled: then it simply ran to its end.
      const send = () => {
        try {
          child.kill(signal);
        } catch {
          // Too late.
        }
      };
      await new Promise((r) => setTimeout(r, rng.int(20, 350)));
      send();
      if (twice) {
        await new Promise((r) => setTimeout(r, rng.int(0, 60)));
        send();
      }
      const first = await child;
      const key = `${signal}${twice ? ' x2' : ''} -> ${first.exitCode ?? 'killed'}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (first.exitCode !== null) expect([0, 3, 130], `${plan.name} ${key}: ${first.stderr}`).toContain(first.exitCode);
      const last = await run(file, reports, undefined, true);
      expect([0, 3], `${plan.name}: ${last.stderr}`).toContain(last.exitCode);
      try {
        check(plan, reports);
        let t = -Infinity;
        for (const l of readJournal(join(reports, `${plan.name}.journal.jsonl`))) {
          if (!('t' in l) || typeof l.t !== 'number') continue;
          expect(l.t, `line ${l.seq} ${l.kind}`).toBeGreaterThanOrEqual(t);
          t = l.t;
        }
      } catch (e) {
        (e as Error).message = `${plan.name} (${reports}, ${key}): ${(e as Error).message}`;
        throw e;
      }
    })));
    console.log(`${SIGNAL_RUNS} signalled runs: ${JSON.stringify(Object.fromEntries([...seen].sort()))}`);
  }, 60_000 + SIGNAL_RUNS * 4_000);
});


describe.skipIf(!process.env.EVAC_SIGNAL_RUNS)('signals on a region-size simulated fleet (npm run test:crash)', () => {
  it('1,000 hosts / 20,000 VMs draining 100: SIGTERM once or twice, or SIGINT, at a random moment of planning or moving; exit 130 (or its end), then resumed: every VM once, report, journal and fleet agree', async () => {
    const rng = seeded(4242);
    const seen: string[] = [];
    for (const [i, [signal, twice]] of ([['SIGTERM', false], ['SIGTERM', true], ['SIGINT', false]] as const).entries()) {
      const sources = Array.from({ length: 100 }, (_, k) => `hv-${String(k + 1).padStart(4, '0')}`) as [string, ...string[]];
      const plan: EvacuationPlan = {
        version: 1, name: `region-signal-${i + 1}`, sources,
        fleet: { driver: 'sim', sim: { seed: 30 + i, generate: { hosts: 1000, vms: 20000 } } },
        migration: { concurrency: { total: 48, per_source: 2, per_destination: 2 } },
      };
      const reports = tempDir('evac-region-signal-');
      const file = planFile(plan, reports);
      const child = run(file, reports);
      const send = () => {
        try {
          child.kill(signal);
        } catch {
          // It ended first.
        }
      };
      await new Promise((r) => setTimeout(r, rng.int(300, 4000)));
      send();
      if (twice) {
        await new Promise((r) => setTimeout(r, rng.int(0, 300)));
        send();
      }
      const first = await child;
      seen.push(`${signal}${twice ? ' x2' : ''} -> ${first.exitCode}`);
      // Honoured, never ignored: the process ends by itself (not killed by the default action) with a documented code.
      expect(first.signal, `${plan.name}: ${first.stderr}`).toBeNull();
      expect([0, 3, 130], `${plan.name}: ${first.stderr}`).toContain(first.exitCode);
      expect(first.stderr).not.toMatch(/MaxListenersExceededWarning|Error:/);
      const resumed = existsSync(join(reports, `${plan.name}.journal.jsonl`)) && first.exitCode === 130;
      const last = await run(file, reports, undefined, resumed);
      expect([0, 3], `${plan.name}: ${last.stderr}`).toContain(last.exitCode);
      check(plan, reports);
    }
    console.log(`region-size signalled runs: ${seen.join(', ')}`);
  }, 300_000);
});
