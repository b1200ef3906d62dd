/**
 * npm run bench:density — libvirt at density on the real testbed (root, the packages .ci/run
 * installs), in one run, against a baseline: the landed code before the batched inventory
 * (BASELINE_REV, built from git into a temporary folder).
 *
 * 1. Discovery time against domains per host: hv2 holds 1 tiny guest, hv3 10, hv1 50; each host
 *    is read alone by the driver's inventory(), REPEAT times (median): the baseline's driver, this
 *    driver, and this driver reading each domain alone (`perDomain`, the path the batch replaced).
 * 2. Time to the first migration with 50 guests on hv1 (plans/testbed.yaml, live, 4 at once): from
 *    starting `evacuator run` to its first move-start event. The baseline's run is interrupted
 *    there (SIGINT: it finishes what is in flight) and the moved guests are sent back; this code's
 *    run goes on to the end (its wall time and makespan are printed too).
 * Prints numbers; asserts nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parse, stringify } from 'yaml';
import { $ } from 'zx';
import { LibvirtDriver } from '../fleet/libvirt/driver.ts';
import type { LibvirtFleet } from '../plan/plan-types.ts';
import { DIR, hostAt, paths } from '../../test/testbed/layout.ts';
import { addTinyGuests, down, tinyGuests, up } from '../../test/testbed/testbed.ts';

$.verbose = false;
const BASELINE_REV = process.env.EVAC_BASELINE_REV ?? '4c7f22f';
const BASE = '/tmp/evacuator-density-baseline';
const REPEAT = Number(process.env.EVAC_REPEAT ?? 3);
const AT = { hv2: 1, hv3: 10, hv1: 50 } as const;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fleet = (names: string[]): LibvirtFleet => ({
  hosts: names.map((n) => ({ name: n, address: hostAt(Number(n.slice(2)) - 1).address })) as LibvirtFleet['hosts'],
  known_hosts: paths.knownHosts, identity_files: [paths.controllerKey], connect_timeout_s: 5,
});
type Inventorying = { inventory(): Promise<{ ok: boolean; inventory?: { vms: unknown[] }; detail?: string }>; close(): Promise<void> };

/** The baseline's product, compiled from git into BASE (reused when already there). */
async function buildBaseline(): Promise<void> {
  if (existsSync(`${BASE}/${BASELINE_REV}/dist/evacuator.js`)) return;
  rmSync(`${BASE}/${BASELINE_REV}`, { recursive: true, force: true });
  mkdirSync(`${BASE}/${BASELINE_REV}`, { recursive: true });
  await $`git archive ${BASELINE_REV} scripts schemas plans package.json tsconfig.json tsconfig.build.json | tar -x -C ${`${BASE}/${BASELINE_REV}`}`;
  symlinkSync(`${process.cwd()}/node_modules`, `${BASE}/${BASELINE_REV}/node_modules`);
  await $({ cwd: `${BASE}/${BASELINE_REV}` })`npx tsc -p tsconfig.build.json`;
}

/** Median seconds of host's inventory read by a fresh driver each time (a new SSH connection, as a run makes). */
async function discovery(make: (f: LibvirtFleet) => Inventorying, host: string): Promise<{ s: number; vms: number }> {
  const times: number[] = [];
  let vms = 0;
  for (let i = 0; i < REPEAT; i++) {
    const d = make(fleet([host]));
    const t = performance.now();
    const got = await d.inventory();
    times.push((performance.now() - t) / 1000);
    await d.close();
    if (!got.ok) throw new Error(`inventory of ${host}: ${got.detail}`);
    vms = got.inventory!.vms.length;
  }
  return { s: median(times), vms };
}

/** Seconds from starting `evacuator run` to its first move-start event; interrupted there when asked. */
async function firstMigration(cli: string, plan: string, interrupt: boolean): Promise<{ firstS: number; wallS: number; exit: number | null; stages: string }> {
  const t0 = performance.now();
  const child = spawn('node', [cli, 'run', plan, '--reports', `${DIR}/reports`, '--events', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let firstS = NaN;
  const stages: string[] = [];
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (l) => {
    const stage = /"kind":"stage".*?"stage":"(\w+)"/.exec(l)?.[1];
    if (stage && Number.isNaN(firstS)) stages.push(`${stage} ${((performance.now() - t0) / 1000).toFixed(1)}`);
    if (!Number.isNaN(firstS) || !l.includes('"move-start"')) return;
    firstS = (performance.now() - t0) / 1000;
    if (interrupt) child.kill('SIGINT');
  });
  child.stderr.resume();
  const exit = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { firstS, wallS: (performance.now() - t0) / 1000, exit, stages: stages.join(', ') };
}

/** Send every tiny guest of hv1 that a run moved back to hv1 (shared storage: no copy). */
async function sendBack(names: string[]): Promise<void> {
  for (const h of ['hv2', 'hv3']) {
    const there = (await $`ssh -F ${paths.sshConfig} ${h} virsh list --all --name`).stdout.split('\n').filter((n) => names.includes(n));
    for (const n of there) await $`ssh -F ${paths.sshConfig} ${h} virsh migrate --live --persistent --undefinesource --p2p --domain ${n} qemu+ssh://hv1/system`;
  }
}

function planFile(name: string): string {
  const plan = parse(readFileSync('plans/testbed.yaml', 'utf8'));
  plan.name = name;
  plan.migration = { ...plan.migration, mode: 'live', concurrency: { total: 4, per_source: 4, per_destination: 2 } };
  // 61 one-vCPU guests on hosts of 2 cores: room for them all (the default 4 per core would hold 16).
  plan.placement = { ...plan.placement, overcommit: { vcpu: 32 } };
  const file = `${DIR}/${name}.yaml`;
  writeFileSync(file, stringify(plan));
  return file;
}

try {
  console.log(`baseline: ${BASELINE_REV} (${(await $`git log -1 --format=%s ${BASELINE_REV}`).stdout.trim().slice(0, 60)}...)`);
  await buildBaseline();
  const Baseline = (await import(`${BASE}/${BASELINE_REV}/dist/fleet/libvirt/driver.js`)).LibvirtDriver as new (f: LibvirtFleet) => Inventorying;
  const t = performance.now();
  const state = await up(3, 0, AT.hv1);
  await addTinyGuests(state, 'hv2', tinyGuests(AT.hv2, AT.hv1 + 1));
  await addTinyGuests(state, 'hv3', tinyGuests(AT.hv3, AT.hv1 + AT.hv2 + 1));
  console.log(`testbed: 3 hosts, ${AT.hv1 + AT.hv2 + AT.hv3} tiny guests up in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  console.log(`\n## discovery: one host's inventory, median of ${REPEAT} (seconds)`);
  console.log('domains on the host | baseline | this, batched | this, per domain');
  for (const [host, n] of Object.entries(AT).sort((a, b) => a[1] - b[1])) {
    const base = await discovery((f) => new Baseline(f), host);
    const batched = await discovery((f) => new LibvirtDriver(f), host);
    const each = await discovery((f) => new LibvirtDriver(f, undefined, undefined, { perDomain: true }), host);
    if (base.vms !== n || batched.vms !== n || each.vms !== n) throw new Error(`${host}: expected ${n} domains, read ${base.vms}, ${batched.vms}, ${each.vms}`);
    console.log(`${String(n).padStart(19)} | ${base.s.toFixed(2).padStart(8)} | ${batched.s.toFixed(2).padStart(13)} | ${each.s.toFixed(2).padStart(16)}`);
  }

  console.log(`\n## time to the first migration, ${AT.hv1} guests on hv1 (evacuator run, process start to the first move-start)`);
  const hv1 = tinyGuests(AT.hv1);
  const basePlan = planFile('density-baseline');
  const b = await firstMigration(`${BASE}/${BASELINE_REV}/dist/evacuator.js`, basePlan, true);
  const baseReport = JSON.parse(readFileSync(`${DIR}/reports/density-baseline.json`, 'utf8'));
  console.log(`baseline: ${b.firstS.toFixed(1)} s (interrupted there; exit ${b.exit} after ${b.wallS.toFixed(1)} s, ${baseReport.vms.filter((v: { status: string }) => v.status === 'moved').length} moved meanwhile, sent back)`);
  console.log(`  stages began at (s): ${b.stages}`);
  await $`node ${`${BASE}/${BASELINE_REV}/dist/evacuator.js`} clear ${basePlan} --reports ${`${DIR}/reports`}`.nothrow();
  await sendBack(hv1);
  const onHv1 = (await $`ssh -F ${paths.sshConfig} hv1 virsh list --name`).stdout.split('\n').filter(Boolean).length;
  const ours = await firstMigration('dist/evacuator.js', planFile('density'), false);
  const report = JSON.parse(readFileSync(`${DIR}/reports/density.json`, 'utf8'));
  const notMoved = report.vms.filter((v: { status: string }) => v.status !== 'moved');
  if (notMoved.length > 0) console.log(`this run left ${notMoved.length} guests, first: ${notMoved[0].vm}: ${notMoved[0].reason}`);
  console.log(`this:     ${ours.firstS.toFixed(1)} s (${onHv1} guests on hv1; the run went on: exit ${ours.exit}, ${ours.wallS.toFixed(1)} s start to exit, makespan ${report.totals.makespanS} s, ${report.vms.filter((v: { status: string }) => v.status === 'moved').length} moved)`);
  console.log(`  stages began at (s): ${ours.stages}`);
} finally {
  await down();
}
