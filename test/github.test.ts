/**
 * GitHub Actions: a run with GITHUB_ACTIONS=true groups its log per stage, annotates every VM
 * that did not move and every source host not empty, and appends a markdown summary to
 * $GITHUB_STEP_SUMMARY; values are escaped for workflow commands and markdown. The shipped
 * workflow is valid (action-validator), and the validator does reject a broken one.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { annotations, stepSummary } from '../scripts/cli/github.ts';
import type { ReportVm } from '../scripts/report/build.ts';
import type { Report } from '../scripts/report/build.ts';
import { ROOT, tempDir } from './helpers.ts';

const evacuate = (env: Record<string, string>, reports: string) =>
  $({ cwd: ROOT, nothrow: true, quiet: true, env: { ...process.env, NO_COLOR: '1', ...env } })`node dist/evacuator.js run plans/example.yaml --reports ${reports}`;

describe('GitHub Actions', () => {
  it('groups each stage, annotates what did not move, and appends the step summary', async () => {
    const dir = tempDir('evac-gh-');
    const summary = join(dir, 'summary.md');
    writeFileSync(summary, '# earlier step\n');
    const r = await evacuate({ GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary }, dir);
    expect(r.exitCode).toBe(3);
    const commands = r.stdout.split('\n').filter((l) => l.startsWith('::'));
    const groups = commands.filter((l) => l.startsWith('::group::')).map((l) => l.slice(9).split(':')[0]);
    expect(groups).toEqual(['discover', 'place', 'preflight', 'migrate', 'verify', 'report']);
    expect(commands.filter((l) => l === '::endgroup::')).toHaveLength(groups.length);
    // Every group is closed before the next opens.
    let open = 0;
    for (const l of commands) {
      open += l.startsWith('::group::') ? 1 : l === '::endgroup::' ? -1 : 0;
      expect(open).toBeGreaterThanOrEqual(0);
      expect(open).toBeLessThanOrEqual(1);
    }
    expect(commands).toContain('::error title=legacy-erp left on hv-a2::live migration error: simulated: migration job failed on the destination; the plan does not allow shutting it down (migration.cold.allow)');
    expect(commands).toContainEqual(expect.stringMatching(/^::warning title=ml-train-1 cannot be placed::gpu: needs 2, at most 0 free after reserve on 6 hosts/));
    expect(commands).toContainEqual(expect.stringMatching(/^::error title=hv-a1 is not empty::ml-train-1 \(running\)/));
    // The moved VMs make no noise.
    expect(commands.filter((l) => /^::(error|warning)/.test(l))).toHaveLength(4);
    // The example pins nothing: no notice either.
    expect(commands.filter((l) => l.startsWith('::notice'))).toEqual([]);

    const md = readFileSync(summary, 'utf8');
    expect(md.startsWith('# earlier step\n## Evacuation rack-a-firmware: ❌ 2 of 2 source hosts are not empty')).toBe(true);
    expect(md).toContain('| 30 | 27 | 1 | 1 | 1 | 1 | 0 |');
    expect(md).toContain('| hv-a2 | **no** | legacy-erp (running) |');
    expect(md).toMatch(/\| ml-train-1 \| unplaced \| hv-a1 \| gpu\\: needs 2/);
  });

  it('--events writes the event stream as JSON lines, one per state change, agreeing with the report', async () => {
    const dir = tempDir('evac-events-');
    const events = join(dir, 'events.jsonl');
    const r = await $({ cwd: ROOT, nothrow: true, quiet: true })`node dist/evacuator.js run plans/example.yaml --reports ${dir} --events ${events}`;
    expect(r.exitCode).toBe(3);
    const lines = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; vm?: string; result?: { vm: string; status: string } });
    const report = JSON.parse(readFileSync(join(dir, 'rack-a-firmware.json'), 'utf8')) as Report;
    expect(lines.filter((e) => e.kind === 'move-start')).toHaveLength(report.vms.reduce((n, v) => n + v.attempts.length, 0));
    expect(lines.filter((e) => e.kind === 'move-end')).toHaveLength(report.vms.reduce((n, v) => n + v.attempts.length, 0));
    const done = lines.filter((e) => e.kind === 'vm-done').map((e) => [e.result!.vm, e.result!.status]).sort();
    expect(done).toEqual(report.vms.map((v) => [v.vm, v.status]).sort());
    expect(lines.some((e) => e.kind === 'progress')).toBe(true);
  });

  it('writes no workflow commands outside Actions', async () => {
    const dir = tempDir('evac-gh-');
    const r = await evacuate({ GITHUB_ACTIONS: '' }, dir);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('::'))).toEqual([]);
  });

  it('escapes values for workflow commands and markdown', () => {
    const vm = { vm: 'a<b>|c', source: 's', plannedDestination: null, host: 's', status: 'left', method: 'none', reason: '50% done:\nthen, it failed', startS: 0, endS: 1, durationS: 1, bytes: 0, downtimeMs: 0, attempts: [{ method: 'live', destination: 'd:1,2', outcome: 'error', detail: '', startS: 0, endS: 1, durationS: 1, bytes: 0, downtimeMs: 0 }] };
    const report = {
      version: 1, plan: { name: 'p', file: 'p.yaml', digest: 'sha256:00' }, driver: 'sim', startedAt: '', endedAt: '', result: 'incomplete', exitCode: 3,
      totals: { vms: 1, moved: 0, live: 0, cold: 0, left: 1, failed: 1, unplaced: 0, pinned: 0, bytes: 0, makespanS: 1, lowerBoundS: 0, sourcesEmpty: 1, sources: 1 },
      hosts: [], vms: [vm], proofs: [{ host: 's', empty: true, left: [] }], warnings: [],
    } as unknown as Report;
    expect(annotations(report)).toEqual(['::error title=a<b>|c left on s::50%25 done:%0Athen, it failed']);
    const md = stepSummary(report, { json: 'r.json', html: 'r.html' });
    expect(md).toContain('| a&lt;b&gt;\\|c | left | s | 50% done\\: then, it failed |');
    const title = annotations({ ...report, vms: [{ ...vm, vm: 'x:y,z' }] } as unknown as Report)[0];
    expect(title.startsWith('::error title=x%3Ay%2Cz left on s::')).toBe(true);
  });

  it('.github/workflows/evacuate.yml is a valid workflow; a broken one is refused', async () => {
    const ok = await $({ cwd: ROOT, nothrow: true, quiet: true })`npx action-validator .github/workflows/evacuate.yml`;
    expect(ok.exitCode, ok.stdout + ok.stderr).toBe(0);
    const workflow = readFileSync(join(ROOT, '.github/workflows/evacuate.yml'), 'utf8');
    // Inputs reach the shell through the environment only (no script injection).
    expect(workflow).not.toMatch(/run:.*\$\{\{/);
    expect(workflow).toMatch(/workflow_dispatch:\n\s+inputs:\n\s+plan:/);
    expect(workflow).toMatch(/actions\/upload-artifact@v4/);
    const broken = join(tempDir('evac-wf-'), 'broken.yml');
    writeFileSync(broken, workflow.replace('runs-on:', 'runs_on:'));
    const bad = await $({ cwd: ROOT, nothrow: true, quiet: true })`npx action-validator ${broken}`;
    expect(bad.exitCode).not.toBe(0);
  });
});

describe('annotations per status', () => {
  it('a pinned VM gets a notice (the plan chose it), a VM left after a failed migration an error, an unplaced one a warning', () => {
    const vm = (status: ReportVm['status'], failed: boolean): ReportVm => ({
      vm: `vm-${status}`, source: 's1', plannedDestination: null, host: 's1', status, method: 'none', reason: `${status} reason`,
      startS: null, endS: null, durationS: null, bytes: 0, downtimeMs: 0,
      attempts: failed ? [{ method: 'live', destination: 'd1', outcome: 'error', detail: 'x', startS: 0, endS: 1, durationS: 1, bytes: 0, downtimeMs: 0 }] : [],
    });
    const r = { vms: [vm('pinned', false), vm('left', true), vm('unplaced', false), vm('moved', false)], proofs: [] } as unknown as Report;
    expect(annotations(r)).toEqual([
      '::notice title=vm-pinned pinned on s1::pinned reason',
      '::error title=vm-left left on s1::left reason',
      '::warning title=vm-unplaced cannot be placed::unplaced reason',
    ]);
  });
});

describe('a step summary that cannot be written', () => {
  it('is said in a warning; the run keeps its own exit code, no stack trace', async () => {
    const dir = tempDir('evac-gh-');
    const r = await evacuate({ GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: '/nonexistent-dir/s.md' }, dir);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/warning: cannot append the step summary to \/nonexistent-dir\/s\.md: ENOENT/);
    expect(r.stderr).not.toMatch(/internal error/);
  });
});
