/**
 * npm run bench:testbed — evacuating 6 guests off hv1 of the real libvirt testbed with evacuator
 * (plans/testbed.yaml: 2 at once, 1 per destination) against a plain sequential loop of
 * `virsh migrate` over the same guests, each on a freshly built testbed, in the same run. Prints
 * the makespans, their ratio, and evacuator's overhead per migration beyond virsh's own time.
 * Needs root and the packages .ci/run installs. Asserts nothing.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { $ } from 'zx';
import { DIR, paths } from '../../test/testbed/layout.ts';
import { down, guests, up } from '../../test/testbed/testbed.ts';

$.verbose = false;
const GUEST_COUNT = 6;
const names = guests(GUEST_COUNT).map((g) => g.name);
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  // Baseline: what an operator's shell loop does, one guest after the other.
  await up(3, GUEST_COUNT);
  const loop: number[] = [];
  const t0 = performance.now();
  for (const [i, g] of names.entries()) {
    const dest = i % 2 === 0 ? 'hv2' : 'hv3';
    const t = performance.now();
    await $`ssh -F ${paths.sshConfig} hv1 virsh migrate --live --persistent --undefinesource --p2p --copy-storage-all ${g} ${`qemu+ssh://${dest}/system`}`;
    loop.push((performance.now() - t) / 1000);
  }
  const loopS = (performance.now() - t0) / 1000;

  // evacuator, from process start to exit: discovery, placement, preflight, migrations, proof, reports.
  await up(3, GUEST_COUNT);
  const t1 = performance.now();
  const run = await $`node dist/evacuator.js run plans/testbed.yaml --reports ${`${DIR}/reports`}`.nothrow();
  const evacS = (performance.now() - t1) / 1000;
  if (run.exitCode !== 0) throw new Error(`evacuator exited ${run.exitCode}:\n${run.stdout}${run.stderr}`);
  const report = JSON.parse(readFileSync(`${DIR}/reports/testbed-hv1.json`, 'utf8'));
  const per = report.vms.map((v: { durationS: number }) => v.durationS) as number[];
  const makespan = report.totals.makespanS as number;

  console.log(`## ${GUEST_COUNT} guests (128/96 MiB, 16 MiB local disk) off hv1 onto hv2 and hv3, QEMU TCG`);
  console.log(`sequential virsh loop: ${loopS.toFixed(1)} s; per migration ${mean(loop).toFixed(2)} s mean (${loop.map((x) => x.toFixed(1)).join(', ')})`);
  console.log(`evacuator (2 at once, 1 per destination): ${evacS.toFixed(1)} s wall from start to exit, migrations makespan ${makespan.toFixed(1)} s; per migration ${mean(per).toFixed(2)} s mean (${per.map((x) => x.toFixed(1)).join(', ')})`);
  console.log(`makespan ratio evacuator/loop: ${(evacS / loopS).toFixed(2)} (wall), ${(makespan / loopS).toFixed(2)} (migrations only)`);
  console.log(`evacuator overhead per migration beyond virsh's own time: ${(median(per) - median(loop)).toFixed(2)} s by medians (${median(per).toFixed(2)} against ${median(loop).toFixed(2)} s), ${(mean(per) - mean(loop)).toFixed(2)} s by means; evacuator runs two at once on 2 cores, the loop one`);
} finally {
  await down();
}
