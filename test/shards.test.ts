/**
 * split and merge through the CLI: a fleet run unsharded, and the same fleet split by rack with
 * each shard run on a fresh copy, merge to the same totals; refusals write nothing; two shards
 * that share a host refuse each other (the shared state file's lock while one runs, the fence
 * after); a 2,000-host plan splits in seconds into shards whose union is the plan.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { ShardIndex } from '../scripts/cli/split.ts';
import type { EvacuationPlan, SimVm } from '../scripts/plan/plan-types.ts';
import type { Report } from '../scripts/report/build.ts';
import { cli, planFile, ROOT, tempDir } from './helpers.ts';

/** Four racks of four hosts; two hosts of racks 1-3 are drained. One VM fails its live migration (not allowed cold), one needs a GPU nobody has. */
function region(): EvacuationPlan {
  const hosts = [1, 2, 3, 4].flatMap((r) => [1, 2, 3, 4].map((j) => ({ name: `r${r}h${j}`, vcpu: 64, memory_mib: 131072, disk_gib: 2000, labels: { rack: `rack-${r}` } })));
  const sources = [1, 2, 3].flatMap((r) => [`r${r}h1`, `r${r}h2`]);
  let n = 0;
  const vms: SimVm[] = sources.flatMap((host) => [0, 1, 2, 3, 4].map((k) => ({ name: `vm-${String(++n).padStart(2, '0')}`, host, vcpu: 2, memory_mib: 4096 * (1 + (k % 3)), resident_mib: 3000, dirty_mibps: 10 + k })));
  vms.push({ name: 'gpu-1', host: 'r2h1', vcpu: 2, memory_mib: 4096, resources: { gpu: 1 } });
  return {
    version: 1, name: 'region',
    fleet: { driver: 'sim', sim: { hosts, vms, faults: [{ kind: 'migration_error', vm: 'vm-03' }] } },
    sources: sources as [string, ...string[]],
    // One stream per source and per destination: a migration's rate, and so its bytes, do not depend on what else runs.
    migration: { concurrency: { total: 4, per_source: 1, per_destination: 1 } },
  };
}

const readJson = <T>(file: string) => JSON.parse(readFileSync(file, 'utf8')) as T;
const COUNTS = ['vms', 'moved', 'live', 'cold', 'left', 'failed', 'unplaced', 'pinned', 'bytes', 'sourcesEmpty', 'sources'] as const;

describe('split and merge', () => {
  it('merged shard reports have the totals of one unsharded run of the same fleet; HTML and step summary written', async () => {
    const dir = tempDir('evac-shards-');
    const plan = planFile(region(), dir);
    const one = await cli('run', plan, '--reports', join(dir, 'one'));
    expect(one.code, one.stderr).toBe(3);
    const split = await cli('split', plan, '--by', 'rack', '--out', join(dir, 'shards'));
    expect(split.code, split.stderr).toBe(0);
    expect(split.stdout).toMatch(/Split plan region by label 'rack': 3 shard\(s\), 6 source\(s\), 10 destination\(s\)/);
    const index = readJson<ShardIndex>(join(dir, 'shards', 'shards.json'));
    expect(index.shards.map((s) => [s.name, s.key])).toEqual([['region-shard-01', 'rack-1'], ['region-shard-02', 'rack-2'], ['region-shard-03', 'rack-3']]);
    expect(index.stateFile).toBe(join(dir, 'shards', 'region.fleet.json'));
    // Each shard prefers its own rack's hosts.
    for (const s of index.shards) expect(s.destinations.filter((d) => d.startsWith(`r${s.index}`))).toEqual([`r${s.index}h3`, `r${s.index}h4`]);
    for (const s of index.shards) {
      const r = await cli('run', s.file, '--reports', join(dir, 'sr'));
      expect([0, 3], r.stderr).toContain(r.code);
    }
    const summary = join(dir, 'summary.md');
    const reports = index.shards.map((s) => join(dir, 'sr', `${s.name}.json`));
    const merged = await cli('merge', '--index', join(dir, 'shards', 'shards.json'), '--reports', join(dir, 'region'), ...reports);
    expect(merged.code, merged.stderr).toBe(3);
    expect(merged.stdout).toMatch(/region region, 3 shard report\(s\): incomplete, 29 of 31 VMs moved/);
    const a = readJson<Report>(join(dir, 'one', 'region.json'));
    const b = readJson<Report>(join(dir, 'region', 'region.json'));
    for (const k of COUNTS) expect(b.totals[k], k).toBe(a.totals[k]);
    expect(b.vms.map((v) => [v.vm, v.status])).toEqual(a.vms.map((v) => [v.vm, v.status]));
    expect(b.shards!.map((s) => s.name)).toEqual(['region-shard-01', 'region-shard-02', 'region-shard-03']);
    expect(readFileSync(join(dir, 'region', 'region.html'), 'utf8')).toMatch(/<h1>Region region \(3 shards\)<\/h1>/);
    // The step summary, when GITHUB_STEP_SUMMARY is set.
    const again = await cli('merge', '--index', join(dir, 'shards', 'shards.json'), '--reports', join(dir, 'region2'), ...reports.slice(0, 2));
    expect(again.code).toBe(3);
    expect(again.stdout).toMatch(/1 shard\(s\) without a report \(region-shard-03\)/);
    const region2 = readJson<Report>(join(dir, 'region2', 'region.json'));
    expect(region2.totals.sources).toBe(6);
    expect(region2.shards!.at(-1)).toMatchObject({ name: 'region-shard-03', result: 'missing', report: null });
    const { $ } = await import('zx');
    const withSummary = await $({ cwd: ROOT, nothrow: true, quiet: true, env: { ...process.env, GITHUB_STEP_SUMMARY: summary } })`node dist/evacuator.js merge --reports ${join(dir, 'region3')} ${reports}`;
    expect(withSummary.exitCode, withSummary.stderr).toBe(3);
    const md = readFileSync(summary, 'utf8');
    expect(md).toMatch(/^## Region region \(3 shards\): ❌ 2 of 6 source hosts are not empty/);
    expect(md).toContain('| region-shard-03 | complete | 0 |');

    // Refused, exit 2: a report twice, an unsharded report with a shard's (VMs in both), an edited shard, not a report.
    const twice = await cli('merge', '--reports', join(dir, 'x'), reports[0], reports[0]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/both reports of plan 'region-shard-01'/);
    const overlap = await cli('merge', '--name', 'x', '--reports', join(dir, 'x'), join(dir, 'one', 'region.json'), reports[0]);
    expect(overlap.code).toBe(2);
    expect(overlap.stderr).toMatch(/VM vm-0\d is in two shards' reports: 'region' and 'region-shard-01'/);
    const notReport = await cli('merge', '--reports', join(dir, 'x'), join(dir, 'shards', 'shards.json'));
    expect(notReport.code).toBe(2);
    expect(notReport.stderr).toMatch(/is not an evacuator report/);
    expect(existsSync(join(dir, 'x'))).toBe(false);

    // No shard left a report (every shard job died): the region is every shard missing, exit 3, not a refusal.
    const none = await cli('merge', '--index', join(dir, 'shards', 'shards.json'), '--reports', join(dir, 'none'));
    expect(none.code, none.stderr).toBe(3);
    expect(readJson<Report>(join(dir, 'none', 'region.json')).shards!.map((s) => s.result)).toEqual(['missing', 'missing', 'missing']);
    expect((await cli('merge', '--reports', join(dir, 'none2'))).code).toBe(2);
    // moveback of a region report: refused (its VMs moved under the shards' plans and fleet); of a shard's report it works.
    const back = await cli('moveback', join(dir, 'region', 'region.json'), '-o', join(dir, 'back.yaml'));
    expect(back.code).toBe(2);
    expect(back.stderr).toMatch(/is a region report merged from 3 shard report\(s\).*\n.*run moveback on each shard's report/);
    expect(existsSync(join(dir, 'back.yaml'))).toBe(false);
    // A second split into the same folder with fewer shards removes the first one's extra shard plan.
    const fewer = await cli('split', plan, '--shards', '2', '--out', join(dir, 'shards'));
    expect(fewer.code, fewer.stderr).toBe(0);
    expect(fewer.stdout).toMatch(/Removed 1 shard plan\(s\) an earlier split wrote/);
    expect(readdirSync(join(dir, 'shards')).filter((f) => f.endsWith('.yaml')).sort()).toEqual(['region-shard-01.yaml', 'region-shard-02.yaml']);
  });

  it('a VM whose affinity partner stays on a destination: split gives that host to the VM\'s shard; out of every pool, the VM is reported, not moved away from it', async () => {
    const dir = tempDir('evac-shards-');
    const hosts = ['src-a1', 'src-a2', 'src-b1', 'src-b2', 'dst-a1', 'dst-a2', 'dst-b1', 'dst-b2', 'dst-x'].map((name) => ({ name, vcpu: 32, memory_mib: 65536, disk_gib: 500, labels: { rack: name.includes('-a') ? 'a' : 'b' } }));
    const vms: SimVm[] = [
      { name: 'app-front', host: 'src-a1', vcpu: 2, memory_mib: 2048, affinity: 'app' },
      { name: 'app-db', host: 'dst-x', vcpu: 2, memory_mib: 2048, affinity: 'app' },
      ...['src-a2', 'src-b1', 'src-b2'].map((host, i) => ({ name: `v${i}`, host, vcpu: 2, memory_mib: 2048 })),
    ];
    const base: EvacuationPlan = { version: 1, name: 'aff', fleet: { driver: 'sim', sim: { hosts, vms } }, sources: ['src-a1', 'src-a2', 'src-b1', 'src-b2'] };
    const split = await cli('split', planFile(base, dir), '--by', 'rack', '--out', join(dir, 'shards'));
    expect(split.code, split.stderr).toBe(0);
    const index = readJson<ShardIndex>(join(dir, 'shards', 'shards.json'));
    expect(index.shards.find((s) => s.sources.includes('src-a1'))!.destinations).toContain('dst-x');
    // dst-x out of the destinations: app-front cannot join app-db, so it is not placed (it was moved to dst-a*).
    const out = await cli('plan', planFile({ ...base, name: 'aff-x', destinations: { exclude: ['dst-x'] } }, dir), '--json');
    expect(out.code).toBe(3);
    const bp = JSON.parse(out.stdout) as { moves: { vm: string }[]; unplaced: { vm: string; reasons: { text: string }[] }[] };
    expect(bp.moves.map((m) => m.vm)).not.toContain('app-front');
    expect(bp.unplaced.find((u) => u.vm === 'app-front')!.reasons[0].text).toMatch(/affinity: group app is on dst-x/);
  });

  it('a label value with a line feed is shown escaped in split\'s output, never as a line of its own', async () => {
    const dir = tempDir('evac-shards-');
    const hosts = ['s1', 's2', 'd1', 'd2'].map((name, i) => ({ name, vcpu: 8, memory_mib: 65536, disk_gib: 100, labels: { rack: i % 2 ? 'b' : 'a\n::error::forged\nsources: [d1]' } }));
    const p: EvacuationPlan = { version: 1, name: 'lf', fleet: { driver: 'sim', sim: { hosts, vms: [{ name: 'v', host: 's1', vcpu: 1, memory_mib: 512 }] } }, sources: ['s1', 's2'] };
    const r = await cli('split', planFile(p, dir), '--by', 'rack', '--out', join(dir, 'shards'));
    expect(r.code, r.stderr).toBe(0);
    for (const line of r.stdout.split('\n')) {
      expect(line).not.toMatch(/^\s*(::|sources: \[d1\])/);
      expect(line).not.toMatch(/::error/);
    }
    expect(r.stdout).toContain('a\\x0a:\\x3aerror:\\x3aforged');
  });

  it('refuses an impossible split with exit 2 and writes nothing', async () => {
    const dir = tempDir('evac-shards-');
    const plan = planFile(region(), dir);
    const out = join(dir, 'shards');
    const many = await cli('split', plan, '--shards', '7', '--out', out);
    expect(many.code).toBe(2);
    expect(many.stderr).toMatch(/--shards 7 is more than the plan's 6 source host\(s\)/);
    const noLabel = await cli('split', plan, '--by', 'row', '--out', out);
    expect(noLabel.code).toBe(2);
    expect(noLabel.stderr).toMatch(/6 source\(s\) have no label 'row': r1h1, r1h2, r2h1/);
    for (const args of [[], ['--by', 'rack', '--shards', '2'], ['--shards', '2x'], ['--shards', '0']]) {
      const r = await cli('split', plan, ...args, '--out', out);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('two shards that share a host refuse each other on a shared simulated fleet; nothing is lost or duplicated', async () => {
    const dir = tempDir('evac-shards-');
    const plan = planFile(region(), dir);
    expect((await cli('split', plan, '--shards', '2', '--out', join(dir, 'shards'))).code).toBe(0);
    const index = readJson<ShardIndex>(join(dir, 'shards', 'shards.json'));
    const [first, second] = index.shards;
    // Badly hand-edited copies of the second shard: one sends VMs onto the first's source, one drains it.
    const edited = (name: string, change: (p: EvacuationPlan) => void) => {
      const p = parse(readFileSync(second.file, 'utf8')) as EvacuationPlan;
      p.name = name;
      change(p);
      const file = join(dir, 'shards', `${name}.yaml`);
      writeFileSync(file, stringify(p));
      return file;
    };
    const into = edited('into-first', (p) => { p.destinations = { hosts: [first.sources[0], ...p.destinations!.hosts!] as [string, ...string[]] }; });
    const drains = edited('drains-first', (p) => { p.sources = [first.sources[0]]; });
    const state = index.stateFile!;
    const reports = join(dir, 'reports');
    // While the first shard runs (paused here), the other is held by the shared fleet's lock: exit 5, no journal.
    const running = spawn(process.execPath, ['dist/evacuator.js', 'run', first.file, '--reports', reports], { cwd: ROOT, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => running.on('exit', (code) => r(code)));
    for (let i = 0; i < 400 && !existsSync(`${state}.lock`); i++) await new Promise((r) => setTimeout(r, 5));
    running.kill('SIGSTOP');
    try {
      const held = await cli('run', into, '--reports', reports);
      expect(held.code, held.stderr).toBe(5);
      expect(existsSync(join(reports, 'into-first.journal.jsonl'))).toBe(false);
    } finally {
      running.kill('SIGCONT');
    }
    expect([0, 3]).toContain(await exited);
    // After it, its sources stay fenced: draining one is refused naming the first shard; sending VMs onto it leaves it out.
    const refused = await cli('run', drains, '--reports', reports);
    expect(refused.code, refused.stderr).toBe(5);
    expect(refused.stderr).toContain(`${first.sources[0]} (a source of this plan) is held by plan '${first.name}'`);
    const avoided = await cli('run', into, '--reports', reports);
    expect([0, 3], avoided.stderr).toContain(avoided.code);
    const report = readJson<Report>(join(reports, 'into-first.json'));
    expect(report.warnings).toContainEqual(expect.stringContaining(`destination ${first.sources[0]} is left out: it is fenced by plan '${first.name}'`));
    expect(report.vms.every((v) => v.host !== first.sources[0])).toBe(true);
    // Every VM of the fleet once, none on the first shard's sources but those it left.
    const saved = readJson<{ domains: { vm: { name: string; host: string } }[] }>(state);
    const names = saved.domains.map((d) => d.vm.name).sort();
    expect(names).toEqual(region().fleet.sim!.vms!.map((v) => v.name).sort());
    const firstReport = readJson<Report>(join(reports, `${first.name}.json`));
    for (const v of firstReport.vms) expect(saved.domains.find((d) => d.vm.name === v.vm)!.vm.host).toBe(v.host);
  });

  it('splits a 2,000-host plan in seconds into shards whose union is the plan and whose destination pools do not meet', async () => {
    const dir = tempDir('evac-shards-');
    const sources = [...Array(200).keys()].map((i) => `hv-${String(i + 1).padStart(4, '0')}`);
    const plan = planFile({ version: 1, name: 'big', fleet: { driver: 'sim', sim: { seed: 1, generate: { hosts: 2000, vms: 40000 } } }, sources }, dir);
    const t0 = Date.now();
    const r = await cli('split', plan, '--by', 'rack', '--out', join(dir, 'shards'));
    const seconds = (Date.now() - t0) / 1000;
    expect(r.code, r.stderr).toBe(0);
    expect(seconds).toBeLessThan(30);
    const index = readJson<ShardIndex>(join(dir, 'shards', 'shards.json'));
    expect(index.shards).toHaveLength(20);
    expect(index.shards.flatMap((s) => s.sources).sort()).toEqual(sources);
    const dests = index.shards.flatMap((s) => s.destinations);
    expect(new Set(dests).size).toBe(dests.length);
    expect(dests.length).toBe(1800);
    expect(readdirSync(join(dir, 'shards')).filter((f) => f.endsWith('.yaml'))).toHaveLength(20);
    const loaded = await cli('validate', index.shards[19].file);
    expect(loaded.code, loaded.stderr).toBe(0);
  });
});
