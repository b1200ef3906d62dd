import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Engine } from '../scripts/fleet/sim/engine.ts';
import { SimDriver, SIM_TIMES } from '../scripts/fleet/sim/driver.ts';
import { estimatePrecopy, MiB } from '../scripts/fleet/precopy.ts';
import type { Report } from '../scripts/report/build.ts';
import type { Blueprint } from '../scripts/preflight/blueprint.ts';
import { reportProblems } from '../scripts/report/schema.ts';
import { cli, planFile, tempDir } from './helpers.ts';

describe('the example plan, end to end through the CLI', () => {
  const reports = tempDir('evac-reports-');
  let planned: Blueprint;
  let report: Report;

  it('plan --json prints the placement, run executes it VM for VM and writes both reports', async () => {
    const p = await cli('plan', 'plans/example.yaml', '--json');
    expect(p.code).toBe(3); // one VM cannot be placed
    planned = JSON.parse(p.stdout) as Blueprint;
    const r = await cli('run', 'plans/example.yaml', '--reports', reports);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/28 of 30 VMs moved \(27 live, 1 cold\), 1 left in place, 1 not placeable/);
    report = JSON.parse(readFileSync(join(reports, 'rack-a-firmware.json'), 'utf8')) as Report;
    expect(existsSync(join(reports, 'rack-a-firmware.html'))).toBe(true);
    for (const m of planned.moves) {
      const v = report.vms.find((x) => x.vm === m.vm)!;
      expect(v.attempts[0].destination, m.vm).toBe(m.destination);
    }
    expect(report.vms).toHaveLength(30);
  });

  it('the report matches schemas/report.schema.json, and the schema catches a broken one', () => {
    expect(reportProblems(report)).toEqual([]);
    const broken = structuredClone(report) as unknown as { totals: Record<string, unknown>; vms: { attempts: { outcome: string }[] }[] };
    delete broken.totals.makespanS;
    broken.vms.find((v) => v.attempts.length > 0)!.attempts[0].outcome = 'exploded';
    const problems = reportProblems(broken);
    expect(problems).toContainEqual(expect.stringMatching(/^\/totals: must have required property 'makespanS'/));
    expect(problems).toContainEqual(expect.stringMatching(/^\/vms\/\d+\/attempts\/0\/outcome: must be equal to one of the allowed values/));
  });

  it('the write-heavy guest hits the deadline, is aborted and cold-migrated', () => {
    const v = report.vms.find((x) => x.vm === 'analytics-1')!;
    expect(v.attempts.map((a) => [a.method, a.outcome])).toEqual([['live', 'timeout'], ['cold', 'ok']]);
    expect(v.attempts[0].durationS).toBeGreaterThanOrEqual(480);
    expect(v.status).toBe('moved');
  });

  it('the GPU VM is reported unplaceable with the reason per host, and its host is not empty', () => {
    const v = report.vms.find((x) => x.vm === 'ml-train-1')!;
    expect(v.status).toBe('unplaced');
    expect(v.reason).toMatch(/gpu: needs 2, at most 0 free after reserve on \d hosts/);
    expect(report.proofs.find((p) => p.host === 'hv-a1')).toMatchObject({ empty: false, left: [{ vm: 'ml-train-1' }] });
  });

  it('a live failure without cold permission leaves the VM running on its source, reported', () => {
    const v = report.vms.find((x) => x.vm === 'legacy-erp')!;
    expect(v).toMatchObject({ status: 'left', host: 'hv-a2' });
    expect(v.reason).toMatch(/does not allow shutting it down/);
  });

  it('anti-affinity holds after the run: the web group is on five different hosts', () => {
    const hosts = ['web-1', 'web-2', 'web-3', 'web-4'].map((n) => report.vms.find((x) => x.vm === n)!.host);
    expect(new Set([...hosts, 'hv-b1']).size).toBe(5);
  });

  it('a maintenance window: no migration starts whose estimated end passes it, and what is left says why', async () => {
    const plan = parse(readFileSync('plans/example.yaml', 'utf8'));
    plan.name = 'windowed';
    const windowS = 300;
    plan.migration.window_end = new Date(Date.now() + windowS * 1000).toISOString();
    const dir = tempDir('evac-window-');
    const r = await cli('run', planFile(plan, dir), '--reports', dir);
    expect(r.code).toBe(3);
    const windowed = JSON.parse(readFileSync(join(dir, 'windowed.json'), 'utf8')) as Report;
    const left = windowed.vms.filter((v) => /maintenance window closes/.test(v.reason));
    expect(left.length).toBeGreaterThan(0);
    for (const v of left) expect([v.status, v.attempts]).toEqual(['left', []]);
    // Every migration that started was expected to end inside the window.
    for (const v of windowed.vms.filter((x) => x.attempts.length > 0)) {
      const est = planned.moves.find((m) => m.vm === v.vm)!.estimateS;
      expect(est, v.vm).not.toBeNull();
      expect(v.attempts[0].startS + est!, v.vm).toBeLessThanOrEqual(windowS);
    }
  });

  it('the HTML report escapes fleet values', async () => {
    const file = planFile({
      version: 1, name: 'xss', sources: ['a'],
      fleet: { driver: 'sim', sim: { hosts: [{ name: 'a', vcpu: 8, memory_mib: 8192, disk_gib: 10 }, { name: 'b', vcpu: 8, memory_mib: 8192, disk_gib: 10 }], vms: [{ name: '<img src=x onerror=alert(1)>', host: 'a', vcpu: 1, memory_mib: 512 }] } },
    });
    const r = await cli('run', file, '--reports', reports);
    expect(r.code).toBe(0);
    const html = readFileSync(join(reports, 'xss.html'), 'utf8');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  it('an unreachable source host: exit 4, nothing touched', async () => {
    const file = planFile({
      version: 1, name: 'down', sources: ['a'],
      fleet: { driver: 'sim', sim: { hosts: [{ name: 'a', vcpu: 8, memory_mib: 8192, disk_gib: 10 }, { name: 'b', vcpu: 8, memory_mib: 8192, disk_gib: 10 }], vms: [{ name: 'v', host: 'a', vcpu: 1, memory_mib: 512 }], faults: [{ kind: 'unreachable', host: 'a' }] } },
    });
    const r = await cli('run', file, '--reports', reports);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/source host a does not answer.*\n.*nothing was touched/);
    expect(existsSync(join(reports, 'down.json'))).toBe(false);
  });
});

describe('preflight counts room as the plan does', () => {
  it('with memory overcommit 1.5, a VM larger than the destination\'s physical free memory but within its overcommitted room passes preflight; one beyond it is refused (preflight used physical memory, and stranded VMs that first-fit decreasing placed)', async () => {
    const plan = (memory: number) => ({
      version: 1, name: 'overcommit-big',
      fleet: { driver: 'sim', sim: {
        hosts: [{ name: 'src', vcpu: 64, memory_mib: 1_000_000, disk_gib: 1000 }, { name: 'dst', vcpu: 64, memory_mib: 262144, disk_gib: 1000 }],
        vms: [{ name: 'big', host: 'src', vcpu: 4, memory_mib: memory }, { name: 'there', host: 'dst', vcpu: 4, memory_mib: 65536 }],
      } },
      sources: ['src'],
      placement: { overcommit: { memory_mib: 1.5 }, reserve: { memory_mib: 0 } },
    });
    // Room: 262144 x 1.5 - 65536 = 327680 MiB (physically free: 196608).
    const ok = await cli('plan', '--json', planFile(plan(300_000)));
    expect(ok.code, ok.stderr).toBe(0);
    const out = JSON.parse(ok.stdout) as { moves: { vm: string }[]; preflight: { ok: boolean } };
    expect(out.moves.map((m) => m.vm)).toEqual(['big']);
    expect(out.preflight.ok).toBe(true);
    const over = await cli('plan', '--json', planFile(plan(330_000)));
    expect(over.code).toBe(3);
    expect((JSON.parse(over.stdout) as { moves: unknown[] }).moves).toEqual([]);
  });
});

describe('spread places as many VMs as first-fit decreasing', () => {
  it('on a nearly full fleet where CPU lines and QEMU versions split the hosts, spread places all 59 VMs (it placed 52, where first-fit decreasing places 59: spread had no floor)', async () => {
    const r = await cli('plan', '--json', join(import.meta.dirname, 'fixtures/spread-eligibility.yaml'));
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { moves: unknown[]; unplaced: unknown[] };
    expect(out.moves.length).toBe(59);
    expect(out.unplaced).toEqual([]);
  });
});

describe('the simulator follows the pre-copy model', () => {
  const one = (dirty: number, resident = 8192, cap?: number) => new SimDriver({
    stream_mibps: cap ?? 1000,
    hosts: [{ name: 'a', vcpu: 8, memory_mib: 65536, disk_gib: 10 }, { name: 'b', vcpu: 8, memory_mib: 65536, disk_gib: 10 }],
    vms: [{ name: 'v', host: 'a', vcpu: 1, memory_mib: resident, dirty_mibps: dirty }],
  });

  it('alone on a link: rounds, bytes, time and downtime match the closed form', async () => {
    const d = one(200);
    const inv = await d.inventory();
    const vm = inv.ok ? inv.inventory.vms[0] : undefined;
    const out = await d.liveMigrate({ vm: vm!, destination: 'b', maxDowntimeMs: 300, onProgress: () => {} });
    const est = estimatePrecopy({ memoryBytes: 8192 * MiB, rateBps: 1000 * MiB, dirtyBps: 200 * MiB, downtimeMs: 300, setupMs: SIM_TIMES.setupMs, resumeMs: SIM_TIMES.resumeMs });
    expect(out.ok && est.converges).toBe(true);
    if (!out.ok || !est.converges) return;
    expect(out.rounds).toBe(est.rounds);
    expect(out.bytes / est.sentBytes).toBeCloseTo(1, 6);
    expect(d.clock.now() / est.durationMs).toBeCloseTo(1, 6);
    expect(out.downtimeMs / est.downtimeMs).toBeCloseTo(1, 6);
  });

  it('two migrations out of one host share its NIC max-min fairly', async () => {
    const e = new Engine(() => 100 * MiB);
    const t = (bytes: number) => e.transfer('a', 'b', bytes, Infinity).finished.then(() => e.now());
    const [first, second] = await Promise.all([t(100 * MiB), t(300 * MiB)]);
    expect(first).toBeCloseTo(2000, 6); // 50 MiB/s each until the first ends
    expect(second).toBeCloseTo(4000, 6); // then the whole 100 MiB/s
  });

  it('a guest that dirties faster than the link never converges', () => {
    expect(estimatePrecopy({ memoryBytes: 8192 * MiB, rateBps: 500 * MiB, dirtyBps: 600 * MiB, downtimeMs: 500 })).toEqual({ converges: false, lambda: 1.2 });
  });
});
