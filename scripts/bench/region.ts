/**
 * npm run bench:region — region-size evacuations of generated simulated fleets through the
 * compiled CLI, each command a whole process timed by /usr/bin/time (wall, peak memory): `plan`,
 * then `run` to its exit. Sizes: 200 hosts / 4,000 VMs draining 20 (the baseline, a tenth of the
 * region), 2,000 hosts / 40,000 VMs draining 200, and the schema's largest fleet, 5,000 hosts /
 * 100,000 VMs draining 500. Prints per size: wall and peak memory of plan and run, exit codes,
 * VMs moved and unplaceable, the simulated makespan against its lower bound, the journal's and the
 * state file's size, and run wall time per VM against the baseline's. Asserts nothing.
 * `--sizes 4000,40000` runs only those. Needs dist/ (npm run build) and GNU time.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = join(ROOT, 'dist/evacuator.js');
if (!existsSync(ENTRY)) {
  console.error('dist/evacuator.js is missing: run npm run build first');
  process.exit(2);
}
if (!existsSync('/usr/bin/time')) {
  console.error('/usr/bin/time (GNU time, Debian package time) is needed for peak memory');
  process.exit(2);
}

const SIZES = [
  { hosts: 200, vms: 4000, sources: 20, concurrency: 16 },
  { hosts: 2000, vms: 40000, sources: 200, concurrency: 64 },
  { hosts: 5000, vms: 100000, sources: 500, concurrency: 128 },
];
const at = process.argv.indexOf('--sizes');
const only = at > 0 ? process.argv[at + 1].split(',').map(Number) : undefined;

interface Timed { wallS: number; peakMiB: number; code: number | null }

function timed(args: string[], cwd: string): Timed {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', join(cwd, 'time.txt'), 'node', ENTRY, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 1 << 30 });
  const [wall, kb] = readFileSync(join(cwd, 'time.txt'), 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wallS: wall, peakMiB: kb / 1024, code: r.status };
}

const rows: string[] = [];
let baseline: number | undefined;
console.log('hosts / VMs / sources | plan: wall, peak | run: wall, peak, exit | moved, unplaceable | makespan vs lower bound | journal, state file | run ms per VM on the sources (x baseline)');
for (const s of SIZES) {
  if (only && !only.includes(s.vms)) continue;
  const dir = mkdtempSync(join(tmpdir(), 'evac-region-'));
  try {
    const sources = Array.from({ length: s.sources }, (_, i) => `hv-${String(i + 1).padStart(Math.max(3, String(s.hosts).length), '0')}`);
    const name = `region-${s.vms}`;
    writeFileSync(join(dir, 'plan.json'), JSON.stringify({
      version: 1, name, sources,
      fleet: { driver: 'sim', sim: { seed: 7, generate: { hosts: s.hosts, vms: s.vms } } },
      migration: { concurrency: { total: s.concurrency, per_source: 2, per_destination: 2 } },
    }));
    const plan = timed(['plan', 'plan.json'], dir);
    const run = timed(['run', 'plan.json', '--reports', dir], dir);
    const report = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { totals: { vms: number; moved: number; unplaced: number; makespanS: number; lowerBoundS: number } };
    const t = report.totals;
    const perVm = (run.wallS * 1000) / t.vms;
    baseline ??= perVm;
    const mib = (f: string) => (statSync(join(dir, f)).size / 2 ** 20).toFixed(1);
    rows.push(`${s.hosts} / ${s.vms} / ${s.sources} | ${plan.wallS.toFixed(1)} s, ${plan.peakMiB.toFixed(0)} MiB | ${run.wallS.toFixed(1)} s, ${run.peakMiB.toFixed(0)} MiB, exit ${run.code} | ${t.moved}, ${t.unplaced} | ${t.makespanS} s vs ${t.lowerBoundS} s (${(t.makespanS / t.lowerBoundS).toFixed(2)}x) | ${mib(`${name}.journal.jsonl`)} MiB, ${mib(`${name}.fleet.json`)} MiB | ${perVm.toFixed(2)} (${(perVm / baseline).toFixed(2)}x)`);
    console.log(rows.at(-1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
