/**
 * Signals, resume and fences through the real CLI on the simulated fleet: a SIGINT sent to the
 * process mid-run; a second plan refused while a killed first one still holds the hosts; the
 * fences lifted by clear.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { $, sleep } from 'zx';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import type { Report } from '../scripts/report/build.ts';
import { chainOf, controller, KILL_AFTER_ENV, processStart, readJournal, stillRunning } from '../scripts/runner/journal.ts';
import { cli, planFile, ROOT, tempDir } from './helpers.ts';
import { readState } from '../scripts/fleet/sim/state.ts';

const fleetOf = (file: string) => readState(file).saved;

function bigPlan(name: string, extra: Partial<EvacuationPlan> = {}): EvacuationPlan {
  return {
    version: 1, name,
    // 5,000 moves two at a time: seconds of wall time even on an idle machine (200 took 0.14 s,
    // and a CI run's signal came after the end), so the signal lands in the middle.
    fleet: { driver: 'sim', sim: { seed: 5, generate: { hosts: 2000, vms: 20000 } } },
    sources: Array.from({ length: 500 }, (_, i) => `hv-${String(i + 1).padStart(4, '0')}`) as [string, ...string[]],
    migration: { concurrency: { total: 2, per_source: 1, per_destination: 1 } },
    ...extra,
  };
}

describe('signals and resume through the CLI', () => {
  it('SIGINT mid-run: no new starts, reports written, exit 130; --resume then finishes the evacuation', async () => {
    const dir = tempDir('evac-sigint-');
    const file = planFile(bigPlan('sigint'), dir);
    const journal = join(dir, 'sigint.journal.jsonl');
    const child = $({ cwd: ROOT, nothrow: true, quiet: true, env: { ...process.env, NO_COLOR: '1' } })`node dist/evacuator.js run ${file} --reports ${dir}`;
    let exited = false;
    void child.then(() => (exited = true));
    // Interrupt once the first migrations are under way.
    while (!exited && !(existsSync(journal) && readFileSync(journal, 'utf8').includes('"move-start"'))) await sleep(5);
    child.kill('SIGINT');
    const out = await child;
    expect(out.exitCode, out.stderr).toBe(130);
    expect(out.stdout).toMatch(/SIGINT: starting no new migrations/);
    const report = JSON.parse(readFileSync(join(dir, 'sigint.json'), 'utf8')) as Report;
    expect(report.result).toBe('interrupted');
    expect(report.exitCode).toBe(130);
    const notStarted = report.vms.filter((v) => v.reason === 'not started: the run was interrupted');
    expect(notStarted.length).toBeGreaterThan(0);
    expect(report.totals.moved).toBeGreaterThan(0);
    const lines = readJournal(journal);
    expect(lines.at(-1)).toMatchObject({ kind: 'run-end', exitCode: 130, interrupted: true });
    expect(chainOf(lines)!.inFlight).toEqual([]);
    // Every VM on exactly one host, running.
    const fleet = fleetOf(join(dir, 'sigint.fleet.json'));
    expect(new Set(fleet.domains.map((d) => d.vm.name)).size).toBe(20000);
    expect(fleet.domains.every((d) => d.vm.state === 'running')).toBe(true);

    // evacuator report rebuilds the same report from the journal.
    const rebuilt = tempDir('evac-rebuilt-');
    expect((await cli('report', journal, '--reports', rebuilt)).code).toBe(0);
    expect(JSON.parse(readFileSync(join(rebuilt, 'sigint.json'), 'utf8'))).toEqual(report);
    expect(existsSync(join(rebuilt, 'sigint.html'))).toBe(true);

    const resumed = await cli('run', file, '--reports', dir, '--resume');
    expect([0, 3], resumed.stderr).toContain(resumed.code);
    const after = JSON.parse(readFileSync(join(dir, 'sigint.json'), 'utf8')) as Report;
    expect(after.result).not.toBe('interrupted');
    expect(after.vms.length).toBe(report.vms.length);
    expect(after.totals.moved).toBeGreaterThan(report.totals.moved);
    // VMs moved before the interruption keep their first run's attempt in the report.
    for (const v of report.vms.filter((x) => x.status === 'moved')) {
      const now = after.vms.find((x) => x.vm === v.vm)!;
      expect(now.host).toBe(v.host);
      expect(now.attempts.length).toBe(v.attempts.length);
    }
  }, 120_000);

  it('a second plan touching the same hosts is refused, naming the first, while the first (killed) holds them; clear lifts the fences', async () => {
    const dir = tempDir('evac-fence-');
    const shared = join(dir, 'shared-fleet.json');
    const fleet = { driver: 'sim' as const, sim: { seed: 3, state_file: shared, generate: { hosts: 6, vms: 24 } } };
    const a = planFile({ version: 1, name: 'drain-a', fleet, sources: ['hv-001'] }, dir);
    const b = planFile({ version: 1, name: 'drain-b', fleet, sources: ['hv-003'] }, dir);
    const killed = await $({ cwd: ROOT, nothrow: true, quiet: true, env: { ...process.env, [KILL_AFTER_ENV]: '12' } })`node dist/evacuator.js run ${a} --reports ${dir}`;
    expect(killed.signal).toBe('SIGKILL');
    expect(fleetOf(shared).hosts.find((h) => h.name === 'hv-001')?.fence).toMatchObject({ plan: 'drain-a', role: 'source' });

    // The killed run's journal still gives a report: interrupted, nothing proven.
    const rebuilt = tempDir('evac-rebuilt-');
    expect((await cli('report', join(dir, 'drain-a.journal.jsonl'), '--reports', rebuilt)).code).toBe(0);
    const partial = JSON.parse(readFileSync(join(rebuilt, 'drain-a.json'), 'utf8')) as Report;
    expect([partial.result, partial.exitCode]).toEqual(['interrupted', 130]);
    expect(partial.proofs).toEqual([{ host: 'hv-001', empty: false, left: [{ vm: '?', state: 'unknown', why: expect.stringMatching(/did not finish; resume it/) }] }]);

    const onHv3 = () => fleetOf(shared).domains.filter((d) => d.vm.host === 'hv-003').map((d) => d.vm.name).sort();
    const hv3Before = onHv3();
    const refused = await cli('run', b, '--reports', dir);
    expect(refused.code, refused.stderr).toBe(5);
    expect(refused.stderr).toMatch(/hv-003 \(a source of this plan\) is held by plan 'drain-a' \(run \w+, moving VMs onto it/);
    expect(refused.stderr).toMatch(/evacuator clear/);
    // Refused before touching anything: every VM of hv-003 is still there.
    expect(onHv3()).toEqual(hv3Before);
    expect(hv3Before.length).toBeGreaterThanOrEqual(4);

    const resumed = await cli('run', a, '--reports', dir, '--resume');
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = fleetOf(shared);
    expect(after.hosts.find((h) => h.name === 'hv-001')?.fence).toMatchObject({ plan: 'drain-a', role: 'source' });
    expect(after.hosts.filter((h) => h.fence).map((h) => h.name)).toEqual(['hv-001']);

    // Now b may run; hv-001 is in maintenance, so nothing goes there.
    const second = await cli('run', b, '--reports', dir);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/destination hv-001 is left out: it is fenced by plan 'drain-a'/);
    expect(fleetOf(shared).domains.filter((d) => d.vm.host === 'hv-001')).toHaveLength(0);

    const cleared = await cli('clear', a, '--reports', dir);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(cleared.stdout).toMatch(/hv-001: lifted the fence of plan 'drain-a'/);
    expect(cleared.stdout).toMatch(/hv-003: left as it is, fenced by plan 'drain-b'/);
    expect(fleetOf(shared).hosts.filter((h) => h.fence).map((h) => h.name)).toEqual(['hv-003']);
  }, 60_000);

  it('moveback writes a plan that returns every moved VM to its host; it waits for the fences to be lifted, then moves only those VMs', async () => {
    const dir = tempDir('evac-moveback-');
    const file = planFile({ version: 1, name: 'fw', fleet: { driver: 'sim', sim: { seed: 9, generate: { hosts: 4, vms: 20 } } }, sources: ['hv-001'] }, dir);
    expect((await cli('run', file, '--reports', dir)).code).toBe(0);
    const before = fleetOf(join(dir, 'fw.fleet.json'));
    const residents = before.domains.filter((d) => d.vm.host !== 'hv-001' && !JSON.parse(readFileSync(join(dir, 'fw.json'), 'utf8')).vms.some((v: { vm: string }) => v.vm === d.vm.name));

    const mb = await cli('moveback', join(dir, 'fw.json'));
    expect(mb.code, mb.stderr).toBe(0);
    const back = join(dir, 'fw-moveback.yaml');
    expect(mb.stdout).toContain(`${back}: moves 5 VM(s) back to hv-001`);
    const refused = await cli('run', back, '--reports', dir);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/every destination is fenced for maintenance: hv-001 by plan 'fw'/);

    expect((await cli('clear', file, '--reports', dir)).code).toBe(0);
    const r = await cli('run', back, '--reports', dir);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const after = fleetOf(join(dir, 'fw.fleet.json'));
    const report = JSON.parse(readFileSync(join(dir, 'fw-moveback.json'), 'utf8')) as Report;
    expect(report.vms.map((v) => v.vm).sort()).toEqual(before.domains.filter((d) => d.vm.host !== 'hv-001').map((d) => d.vm.name).filter((n) => !residents.some((x) => x.vm.name === n)).sort());
    for (const v of report.vms) expect(after.domains.find((d) => d.vm.name === v.vm)?.vm.host).toBe('hv-001');
    // The VMs that were there all along stay where they were.
    for (const d of residents) expect(after.domains.find((x) => x.vm.name === d.vm.name)?.vm.host).toBe(d.vm.host);
    // A moveback does not put its sources in maintenance.
    expect(after.hosts.filter((h) => h.fence)).toEqual([]);
  }, 60_000);
});

describe('whether the process that wrote a run is alive', () => {
  it('a live pid is the run only if that process started when the run did (a reused pid is not)', async () => {
    const child = spawn('sleep', ['60']);
    await once(child, 'spawn');
    const run = { controller: controller(), pid: child.pid!, pidStart: processStart(child.pid!), ended: false };
    expect(run.pidStart).toMatch(/^\d+$/);
    expect(stillRunning(run)).toBe(true);
    // The same pid, but a process that started at another time: the run's own process is gone.
    expect(stillRunning({ ...run, pidStart: String(Number(run.pidStart) - 1) })).toBe(false);
    // A journal written before the start time was recorded: the pid alone decides.
    expect(stillRunning({ ...run, pidStart: undefined })).toBe(true);
    expect(stillRunning({ ...run, ended: true })).toBe(false);
    expect(stillRunning({ ...run, controller: 'another-machine' })).toBe(false);
    child.kill();
    await once(child, 'exit');
    expect(stillRunning(run)).toBe(false);
  });
});
