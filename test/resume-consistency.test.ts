/**
 * A resume is consistent or refused: the simulated clock never goes back (journal timestamps
 * never decrease, no attempt ends before it starts); a state file deleted between the kill and
 * the resume, or a plan edited in between, is refused (exit 2, nothing written) unless the edit
 * is accepted on purpose, which the report then says.
 */
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import type { Report } from '../scripts/report/build.ts';
import { KILL_AFTER_ENV, readJournal } from '../scripts/runner/journal.ts';
import { readState } from '../scripts/fleet/sim/state.ts';
import { cli, planFile, ROOT, tempDir } from './helpers.ts';

const plan = (name: string): EvacuationPlan => ({
  version: 1, name,
  fleet: { driver: 'sim', sim: { seed: 7, generate: { hosts: 30, vms: 300 } } },
  sources: ['hv-001', 'hv-002', 'hv-003'],
  migration: { concurrency: { total: 2, per_source: 1, per_destination: 1 } },
});

const killedAt = (file: string, dir: string, line: number) =>
  $({ cwd: ROOT, nothrow: true, quiet: true, env: { ...process.env, [KILL_AFTER_ENV]: String(line) } })`node dist/evacuator.js run ${file} --reports ${dir}`;

describe('resume: consistent or refused', () => {
  it('killed mid-run and resumed: journal times never go back, no attempt ends before it starts, timelines agree', async () => {
    const dir = tempDir();
    const file = planFile(plan('mono'), dir);
    const k = await killedAt(file, dir, 40);
    expect(k.exitCode).not.toBe(0);
    const r = await cli('run', file, '--reports', dir, '--resume');
    expect([0, 3], r.stderr).toContain(r.code);
    const lines = readJournal(join(dir, 'mono.journal.jsonl'));
    let last = -Infinity;
    for (const l of lines) {
      if (!('t' in l) || typeof l.t !== 'number') continue;
      expect(l.t, `line ${l.seq} (${l.kind}) goes back in time`).toBeGreaterThanOrEqual(last);
      last = l.t;
    }
    const report = JSON.parse(readFileSync(join(dir, 'mono.json'), 'utf8')) as Report;
    for (const v of report.vms) {
      for (const a of v.attempts) expect(a.endS, `${v.vm}`).toBeGreaterThanOrEqual(a.startS);
      for (let i = 1; i < v.attempts.length; i++) expect(v.attempts[i].startS, `${v.vm} attempt ${i + 1}`).toBeGreaterThanOrEqual(v.attempts[i - 1].endS);
    }
  });

  it('a VM the killed run planned, deleted before the resume: the resumed report says it is no longer in the fleet', async () => {
    const dir = tempDir();
    const file = planFile(plan('deleted'), dir);
    const k = await killedAt(file, dir, 40);
    expect(k.exitCode).not.toBe(0);
    const lines = readJournal(join(dir, 'deleted.journal.jsonl'));
    const planned = lines.find((l): l is Extract<typeof l, { kind: 'planned' }> => l.kind === 'planned')!;
    const started = new Set(lines.filter((l) => l.kind === 'move-start').map((l) => (l as { vm: string }).vm));
    const victim = planned.moves.map((m) => m.vm).find((vm) => !started.has(vm))!;
    // The fleet without it, as a host would show it after someone deleted the guest.
    const state = join(dir, 'deleted.fleet.json');
    const { saved } = readState(state);
    writeFileSync(state, `${JSON.stringify({ ...saved, domains: saved.domains.filter((d) => d.vm.name !== victim) })}\n`);
    const r = await cli('run', file, '--reports', dir, '--resume');
    expect([0, 3], r.stderr).toContain(r.code);
    const report = JSON.parse(readFileSync(join(dir, 'deleted.json'), 'utf8')) as Report;
    expect(report.warnings.join('\n')).toMatch(new RegExp(`no longer in the fleet \\(deleted\\?\\): .*${victim}`));
  });

  it('the simulated fleet\'s state file deleted between the kill and the resume: refused (exit 2), the journal untouched', async () => {
    const dir = tempDir();
    const file = planFile(plan('gone'), dir);
    await killedAt(file, dir, 40);
    const journal = join(dir, 'gone.journal.jsonl');
    const before = readFileSync(journal, 'utf8');
    rmSync(join(dir, 'gone.fleet.json'));
    const r = await cli('run', file, '--reports', dir, '--resume');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/state file .*gone\.fleet\.json is gone, but the journal says an earlier run of 'gone' changed the fleet/);
    expect(readFileSync(journal, 'utf8')).toBe(before);
  });

  it('a plan edited between the kill and the resume: refused (exit 2) with what to do; accepted on purpose, the report says so', async () => {
    const dir = tempDir();
    const file = planFile(plan('edited'), dir);
    await killedAt(file, dir, 40);
    const journal = join(dir, 'edited.journal.jsonl');
    const before = readFileSync(journal, 'utf8');
    const edited = { ...plan('edited'), destinations: { exclude: ['hv-010'] }, migration: { mode: 'live' as const, concurrency: { total: 2, per_source: 1, per_destination: 1 } } };
    writeFileSync(file, JSON.stringify(edited));
    const r = await cli('run', file, '--reports', dir, '--resume');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/changed since the run it would resume/);
    expect(r.stderr).toMatch(/--accept-changed-plan/);
    expect(readFileSync(journal, 'utf8')).toBe(before);
    const ok = await cli('run', file, '--reports', dir, '--resume', '--accept-changed-plan');
    expect([0, 3], ok.stderr).toContain(ok.code);
    const report = JSON.parse(readFileSync(join(dir, 'edited.json'), 'utf8')) as Report;
    expect(report.warnings.join('\n')).toMatch(/resumed with .* changed since run .* began \(--accept-changed-plan\)/);
  });
});

describe('state files that are not what they should be', () => {
  it('an older copy of the state file put back before --resume is refused (VMs would move twice)', async () => {
    const dir = tempDir();
    const file = planFile(plan('older'), dir);
    await killedAt(file, dir, 10);
    const old = readFileSync(join(dir, 'older.fleet.json'), 'utf8');
    await $({ cwd: ROOT, nothrow: true, quiet: true, env: { ...process.env, [KILL_AFTER_ENV]: '80' } })`node dist/evacuator.js run ${file} --reports ${dir} --resume`;
    writeFileSync(join(dir, 'older.fleet.json'), old);
    const r = await cli('run', file, '--reports', dir, '--resume');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/older than the journal it would resume/);
  });

  it('a state_file that is /dev/zero or a report: exit 2, no hang, no stack', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'report.json'), JSON.stringify({ version: 1, vms: [] }));
    for (const state of ['/dev/zero', join(dir, 'report.json')]) {
      const p = { ...plan('devzero'), fleet: { driver: 'sim' as const, sim: { seed: 7, state_file: state, generate: { hosts: 30, vms: 300 } } } };
      const r = await cli('run', planFile(p, dir), '--reports', dir);
      expect(r.code, `${state}: ${r.stderr}`).toBe(2);
      expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
    }
  });
});

describe('a killed run\'s journal', () => {
  it('a last line cut short by the kill is cut off before the resume appends: the journal stays readable, resume and report work', async () => {
    const dir = tempDir();
    const file = planFile(plan('torn'), dir);
    await killedAt(file, dir, 30);
    const journal = join(dir, 'torn.journal.jsonl');
    const whole = readJournal(journal).length;
    // What a kill in the middle of writing a long line leaves: the start of a line, no newline.
    appendFileSync(journal, '{"kind":"progress","t":12,"progress":{"vm":"vm-0');
    const r = await cli('run', file, '--reports', dir, '--resume');
    expect([0, 3], r.stderr).toContain(r.code);
    const lines = readJournal(journal);
    expect(lines.length).toBeGreaterThan(whole);
    expect(readFileSync(journal, 'utf8').split('\n').slice(0, -1).every((l) => l.startsWith('{') && l.endsWith('}'))).toBe(true);
    expect((await cli('report', journal, '--reports', join(dir, 'again'))).code).toBe(r.code);
  });

  it('report on a killed run\'s journal lists every VM it planned: finished, in flight (where unknown), not started (on its source)', async () => {
    const dir = tempDir();
    const file = planFile(plan('killed'), dir);
    await killedAt(file, dir, 30);
    const journal = join(dir, 'killed.journal.jsonl');
    const planned = readJournal(journal).find((l) => l.kind === 'planned')!;
    expect(planned.kind === 'planned').toBe(true);
    if (planned.kind !== 'planned') return;
    const r = await cli('report', journal, '--reports', join(dir, 'rebuilt'));
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'rebuilt', 'killed.json'), 'utf8')) as Report;
    expect(report.exitCode).toBe(130);
    expect(report.vms.map((v) => v.vm).sort()).toEqual([...planned.moves.map((m) => m.vm), ...planned.unplaced.map((u) => u.vm), ...planned.pinned.map((p) => p.vm)].sort());
    expect(report.result).toBe('interrupted');
    const notStarted = report.vms.filter((v) => v.reason.startsWith('not started'));
    expect(notStarted.length).toBeGreaterThan(0);
    for (const v of notStarted) expect(v.host).toBe(v.source);
    for (const v of report.vms.filter((x) => x.reason.includes('in flight when the run stopped'))) expect(v.host).toBeNull();
  });

  it('a signal while a region-size run places (before any change): exit 130, no journal, no fence, no state written', async () => {
    const dir = tempDir();
    const p: EvacuationPlan = {
      version: 1, name: 'early',
      fleet: { driver: 'sim', sim: { seed: 3, generate: { hosts: 1000, vms: 20000 } } },
      sources: Array.from({ length: 100 }, (_, i) => `hv-${String(i + 1).padStart(4, '0')}`) as [string, ...string[]],
    };
    const file = planFile(p, dir);
    const child = $({ cwd: ROOT, nothrow: true, quiet: true, env: { ...process.env, NO_COLOR: '1' } })`node dist/evacuator.js run ${file} --reports ${dir}`;
    // The place stage is printed as placement starts; it takes a second or more for 2,000 VMs on 1,000 hosts.
    let seen = false;
    child.stdout.on('data', (d: Buffer) => {
      if (!seen && String(d).includes('place:')) {
        seen = true;
        child.kill('SIGINT');
      }
    });
    const out = await child;
    expect(seen, out.stdout).toBe(true);
    expect(out.exitCode, out.stderr).toBe(130);
    expect(out.stderr).toMatch(/interrupted before the run changed anything/);
    expect(existsSync(join(dir, 'early.journal.jsonl'))).toBe(false);
    expect(existsSync(join(dir, 'early.fleet.json'))).toBe(false);
    expect(existsSync(join(dir, 'early.json'))).toBe(false);
  });
});

