/**
 * Rolling maintenance on the simulated fleet: the waves' rules over generated clusters (fast-check),
 * whole rolls through the CLI (every host maintained once, every VM on one host, each moved at most
 * once but for the first wave's, bytes against the move-back baseline), failures (a host that does
 * not come back, stop and skip), commands (argv, environment, timeout, secrets masked), return:
 * origin, bad plans, and rolls killed at random steps and resumed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimDriver } from '../scripts/fleet/sim/driver.ts';
import { readState } from '../scripts/fleet/sim/state.ts';
import { planRoll, readRollJournal, type RollReport } from '../scripts/rolling/roll.ts';
import { keptOutput, masker } from '../scripts/rolling/steps.ts';
import { cli, planFile, tempDir } from './helpers.ts';
import { cluster, fleetAfter, movesByVm, pinnedRoll, rollLines, runUntil, smallVm } from './rolling-helpers.ts';

describe('rolling maintenance: the waves', () => {
  it('never two hosts of one rack nor two holders of one anti-affinity group in a wave; every VM placed; only VMs landing on hosts not yet maintained move twice (fast-check over clusters of 10-150 hosts)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 10, max: 150 }), fc.integer({ min: 3, max: 12 }), fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 1000 }), fc.constantFrom<number | 'auto'>(1, 2, 3, 'auto'),
      async (hosts, perHost, groups, seed, wave) => {
        const plan = cluster(hosts, hosts * perHost, groups, seed, { wave, max_wave: 6 });
        const inv = await new SimDriver(plan.fleet.sim!).inventory();
        if (!inv.ok) throw new Error(inv.detail);
        const rp = planRoll(plan, inv.inventory);
        const where = new Map(inv.inventory.vms.map((v) => [v.name, v.host]));
        const rack = new Map(inv.inventory.hosts.map((h) => [h.name, h.labels.rack]));
        const maintained = new Set<string>();
        const count = new Map<string, number>();
        for (const w of rp.waves) {
          if (typeof wave === 'number') expect(w.hosts.length).toBeLessThanOrEqual(wave);
          // Failure domains and anti-affinity groups, on the fleet as it is when the wave starts.
          expect(new Set(w.hosts.map((h) => rack.get(h))).size, JSON.stringify(w.hosts)).toBe(w.hosts.length);
          const groupsOf = (h: string) => new Set(inv.inventory.vms.filter((v) => where.get(v.name) === h && v.antiAffinity).map((v) => v.antiAffinity));
          for (let i = 0; i < w.hosts.length; i++) for (let j = i + 1; j < w.hosts.length; j++) {
            const a = groupsOf(w.hosts[i]);
            expect([...groupsOf(w.hosts[j])].filter((g) => a.has(g)), `${w.hosts[i]} ${w.hosts[j]}`).toEqual([]);
          }
          // Every VM of the wave's hosts moves, onto a host outside the wave.
          const on = inv.inventory.vms.filter((v) => w.hosts.includes(where.get(v.name)!)).map((v) => v.name).sort();
          expect(w.moves.map((m) => m.vm).sort()).toEqual(on);
          for (const m of w.moves) {
            expect(w.hosts).not.toContain(m.to);
            expect(m.final).toBe(maintained.has(m.to));
            where.set(m.vm, m.to);
            count.set(m.vm, (count.get(m.vm) ?? 0) + 1);
          }
          for (const h of w.hosts) maintained.add(h);
        }
        // A host is blocked only when no placement can take its VMs (an anti-affinity group on every other host, or no room).
        for (const b of rp.blocked) expect(b.why).toMatch(/anti-affinity|needs|free|fits|room/);
        expect(maintained.size + rp.blocked.length).toBe(hosts);
        // A VM moves a second time only when it had landed on a host not yet maintained.
        const again = rp.waves.flatMap((w) => w.moves).filter((m) => !m.final).length;
        expect([...count.values()].filter((c) => c > 1).length).toBeLessThanOrEqual(again);
        expect(rp.again).toBeLessThanOrEqual(again);
      },
    ), { numRuns: 15 });
  }, 240_000);
});

describe('rolling maintenance: secrets in kept output', () => {
  it('no piece of 4+ characters of a secret survives: whole, URL-encoded, base64 or JSON-escaped, nor cut by the kept tail or by a command killed mid-write (fast-check)', () => {
    const letters = (chars: string, min: number, max: number) => fc.array(fc.constantFrom(...chars), { minLength: min, maxLength: max }).map((a) => a.join(''));
    fc.assert(fc.property(
      letters('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 4, 40), letters('abcdefghij ', 0, 60), letters('abcdefghij ', 0, 60),
      fc.constantFrom('raw', 'url', 'base64', 'json'), fc.nat(), fc.nat(), fc.nat(),
      (secret, before, after, form, cutA, cutB, cutC) => {
        const shown = form === 'raw' ? secret : form === 'url' ? encodeURIComponent(secret) : form === 'base64' ? Buffer.from(secret).toString('base64') : JSON.stringify(secret).slice(1, -1);
        const whole = `${before}${shown}${after}${shown}`;
        // The kept tail starts anywhere, and the command may have died anywhere after it.
        const start = cutA % (whole.length + 1);
        const end = start + (cutB % (whole.length - start + 1));
        const text = whole.slice(start, end);
        const mask = masker(['S'], { S: secret });
        const out = mask(text);
        for (let i = 0; i + 4 <= shown.length; i++) {
          const piece = shown.slice(i, i + 4 + (cutC % Math.max(1, shown.length - i - 3)));
          // Upper case and digits only: the random text around it (lower case) cannot make it.
          if (/^[A-Z0-9]+$/.test(piece)) expect(out.includes(piece) ? piece : '', `${JSON.stringify(text)} -> ${JSON.stringify(out)}`).toBe('');
        }
      },
    ), { numRuns: 2000 });
    // The forms an operator's attacker found kept whole: base64 behind a prefix (HTTP Basic), base64url, lower-case percent-encoding, a secret split across stdout and stderr with text after it.
    const tok = 'qZ7x/K9m+W2pL=4v&N8r"Yt\\q';
    const m = masker(['TOK'], { TOK: tok });
    const b64 = (x: string) => Buffer.from(x).toString('base64');
    for (const shown of [b64(`u:${tok}`), b64(`user:${tok}`), b64(`x${tok}`), b64(`xy${tok}`), `Basic ${b64(`admin:${tok}`)}`, b64(tok).replace(/\+/g, '-').replace(/\//g, '_'), encodeURIComponent(tok).replace(/%[0-9A-F]{2}/g, (x) => x.toLowerCase())]) {
      const out = m(`header ${shown} trailer`);
      expect(out, shown).toMatch(/^header .*\*\*\*.* trailer$/);
      // What is left of it does not decode back to 8 bytes of the secret.
      for (const run of out.match(/[A-Za-z0-9+/_-]{12,}/g) ?? []) expect(Buffer.from(run.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1')).not.toContain(tok.slice(4, 12));
    }
    // Every byte percent-encoded (either case), encoded twice, JSON with \\u escapes, hex; a split at 6 characters.
    const uni = 'pässwörd-Ünïcode-Geheimnis';
    const mu = masker(['U'], { U: uni });
    expect(mu(JSON.stringify({ a: uni }).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))).toBe('{"a":"***"}');
    const every = (x: string) => [...Buffer.from(x)].map((c) => `%${c.toString(16).padStart(2, '0')}`).join('');
    for (const shown of [every(tok), every(tok).toUpperCase(), encodeURIComponent(encodeURIComponent(tok)), Buffer.from(tok).toString('hex')]) expect(m(`a ${shown} b`), shown).toBe('a *** b');
    expect(keptOutput(`split:${tok.slice(0, 6)}\nmore\n`, `${tok.slice(6)}\n`, m)).not.toContain(tok.slice(0, 6));
    const split = keptOutput(`split:${tok.slice(0, 8)}\nmore text after it\n`, `${tok.slice(8)}\n`, m);
    expect(split).not.toContain(tok.slice(0, 8));
    expect(split).not.toContain(tok.slice(8));
    // Short values are not secrets masked everywhere; the text around a secret stays.
    expect(masker(['S'], { S: 'abc' })('abc abc')).toBe('abc abc');
    expect(masker(['S'], { S: 'hunter22' })('pw=hunter22 ok')).toBe('pw=*** ok');
  });
});

describe('rolling maintenance: whole rolls (CLI, simulated fleet)', () => {
  it('maintains every host once, leaves every VM on exactly one host, moves each at most once but for the first wave\'s, at most 0.55x the move-back bytes, no fence left', async () => {
    const dir = tempDir();
    const file = planFile(cluster(30, 300, 4, 11, { wave: 'auto', max_wave: 4 }), dir);
    const reports = join(dir, 'reports');
    const r = await cli('run', file, '--reports', reports);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
    expect(report.totals.maintained).toBe(30);
    const fleet = fleetAfter(reports);
    expect(fleet.domains).toHaveLength(300);
    expect(new Set(fleet.domains.map((d) => d.vm.name)).size).toBe(300);
    for (const d of fleet.domains) expect(d.vm.state).toBe('running');
    for (const h of fleet.hosts) {
      expect(h.hypervisor.version, h.name).toBe('9.9.0');
      expect(h.fence, h.name).toBeUndefined();
    }
    expect(fleet.down).toEqual([]);
    // Counted from the waves' journals, not from the roll's report.
    const moves = movesByVm(reports);
    const firstWave = new Set(report.waves[0].hosts);
    const lines = readRollJournal(join(reports, 'roll.roll.jsonl'));
    const done = lines.filter((l) => l.kind === 'host-done');
    expect(done.map((l) => (l.kind === 'host-done' ? l.host : '')).sort()).toEqual(fleet.hosts.map((h) => h.name).sort());
    const maintainedOnce = lines.filter((l) => l.kind === 'step-end' && l.step === 'maintain' && l.ok);
    expect(maintainedOnce).toHaveLength(30);
    const twice = [...moves].filter(([, n]) => n > 1).map(([vm]) => vm);
    const origin = new Map(report.vms.map((v) => [v.vm, v.origin]));
    // A VM moves twice only when it landed on a host not yet maintained: every first-wave VM (no
    // host is maintained yet) and the few plan announced; the run does what plan said.
    const planned = JSON.parse((await cli('plan', file, '--json')).stdout) as { movedAgain: number };
    expect(twice.length).toBe(planned.movedAgain);
    expect(report.totals.movedAgain).toBe(planned.movedAgain);
    expect(twice.filter((vm) => !firstWave.has(origin.get(vm)!)).length).toBeLessThanOrEqual(report.vms.filter((v) => firstWave.has(v.origin)).length / 5);
    expect([...moves.values()].every((n) => n <= 2)).toBe(true);
    expect(report.totals.migrations).toBe([...moves.values()].reduce((a, b) => a + b, 0));
    expect(report.totals.bytes / report.totals.moveBack.bytes).toBeLessThanOrEqual(0.55);
    const html = readFileSync(join(reports, 'roll.html'), 'utf8');
    expect(html).toContain('All 30 hosts maintained');
    // The roll's journal gives the same report back; moveback refuses a roll's report with what to do instead.
    const rebuilt = await cli('report', join(reports, 'roll.roll.jsonl'), '--reports', join(dir, 'again'));
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'again', 'roll.json'), 'utf8'))).toEqual(report);
    const mb = await cli('moveback', join(reports, 'roll.json'));
    expect(mb.code).toBe(2);
    expect(mb.stderr).toMatch(/return: origin/);
  }, 120_000);

  it('a host that does not come back: stop ends the roll after its wave with exit 3, the host fenced and no later wave started; skip maintains the others', async () => {
    for (const policy of ['stop', 'skip'] as const) {
      const dir = tempDir();
      const base = cluster(12, 60, 0, 3, { wave: 1, order: 'listed', on_failure: policy, checks: { hypervisor_version: '9.9.0', timeout_s: 300 } });
      const rolling = base.rolling!;
      base.sources = ['hv-002', 'hv-001'];
      rolling.selector = undefined;
      rolling.maintenance = { simulate: { duration_s: 60, hypervisor_version: '9.9.0', fail: ['hv-002'] } };
      const file = planFile(base, dir);
      const reports = join(dir, 'reports');
      const r = await cli('run', file, '--reports', reports);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      const report = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
      const hv2 = report.hosts.find((h) => h.host === 'hv-002')!;
      expect(hv2.status).toBe(policy === 'stop' ? 'failed' : 'skipped');
      expect(hv2.why).toMatch(/does not answer/);
      const hv1 = report.hosts.find((h) => h.host === 'hv-001')!;
      expect(hv1.status).toBe(policy === 'stop' ? 'pending' : 'maintained');
      expect(report.waves).toHaveLength(policy === 'stop' ? 1 : 2);
      const fleet = fleetAfter(reports);
      // The failed host is still down; nothing of a guest was on it.
      expect(fleet.down).toEqual(['hv-002']);
      expect(fleet.domains.filter((d) => d.vm.host === 'hv-002')).toEqual([]);
      expect(fleet.hosts.find((h) => h.name === 'hv-001')!.fence).toBeUndefined();
      expect(r.stdout).toMatch(/hv-002 is not maintained/);
    }
  }, 120_000);

  it('return: origin brings every moved VM back to the host it started on', async () => {
    const dir = tempDir();
    const plan = cluster(8, 40, 0, 5, { wave: 1, return: 'origin' });
    const file = planFile(plan, dir);
    const reports = join(dir, 'reports');
    const r = await cli('run', file, '--reports', reports);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const inv = await new SimDriver(plan.fleet.sim!).inventory();
    if (!inv.ok) throw new Error(inv.detail);
    const start = new Map(inv.inventory.vms.map((v) => [v.name, v.host]));
    for (const d of fleetAfter(reports).domains) expect(d.vm.host, d.vm.name).toBe(start.get(d.vm.name));
    const report = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
    expect(report.totals.returned).toBeGreaterThan(0);
    // plan counts the returns too: its waves and moves are the run's.
    const planned = JSON.parse((await cli('plan', file, '--json')).stdout) as { waves: { hosts: string[] }[]; moves: number };
    expect(planned.waves.map((w) => w.hosts)).toEqual(report.waves.map((w) => w.hosts));
    expect(planned.moves).toBe(report.totals.migrations);
  }, 120_000);

  it('commands: argv without a shell, the host in the environment, secrets masked, a timeout kills; a failing step leaves its host fenced', async () => {
    const dir = tempDir();
    const plan = cluster(4, 12, 0, 2, { wave: 1, order: 'listed', secret_env: ['EVAC_TEST_TOKEN'], on_failure: 'skip' });
    plan.sources = ['hv-001', 'hv-002', 'hv-003'];
    plan.rolling!.selector = undefined;
    plan.rolling!.checks = { timeout_s: 60 };
    // A value that would be shell syntax is an argument like any other.
    plan.rolling!.maintenance = { command: ['sh', '-c', 'echo "host=$EVAC_HOST wave=$EVAC_WAVE token=$EVAC_TEST_TOKEN arg=$1"; [ "$EVAC_HOST" != hv-002 ] || exit 7', 'step', '$(touch /tmp/evac-pwned); `id`'], timeout_s: 20 };
    plan.rolling!.hooks = { before_host: ['sh', '-c', '[ "$EVAC_HOST" != hv-003 ] || sleep 30'], timeout_s: 1 };
    const file = planFile(plan, dir);
    const reports = join(dir, 'reports');
    const { $ } = await import('zx');
    const out = await $({ nothrow: true, quiet: true, env: { ...process.env, EVAC_TEST_TOKEN: 's3cr3t-token-value', NO_COLOR: '1' } })`node dist/evacuator.js run ${file} --reports ${reports}`;
    expect(out.exitCode, out.stdout + out.stderr).toBe(3);
    expect(existsSync('/tmp/evac-pwned')).toBe(false);
    const report = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
    const status = Object.fromEntries(report.hosts.map((h) => [h.host, h.status]));
    expect(status).toMatchObject({ 'hv-001': 'maintained', 'hv-002': 'skipped', 'hv-003': 'skipped' });
    const h1 = report.hosts.find((h) => h.host === 'hv-001')!;
    expect(h1.maintained!.output).toContain('host=hv-001 wave=1 token=*** arg=$(touch /tmp/evac-pwned); `id`');
    expect(report.hosts.find((h) => h.host === 'hv-002')!.why).toMatch(/exit 7/);
    expect(report.hosts.find((h) => h.host === 'hv-003')!.why).toMatch(/before_host/);
    expect(report.hooks.find((h) => h.host === 'hv-003')!.detail).toMatch(/timeout of 1 s/);
    const all = readFileSync(join(reports, 'roll.roll.jsonl'), 'utf8') + readFileSync(join(reports, 'roll.json'), 'utf8') + readFileSync(join(reports, 'roll.html'), 'utf8') + out.stdout + out.stderr;
    expect(all).not.toContain('s3cr3t-token-value');
    const fleet = fleetAfter(reports);
    // hv-002 was emptied and its step failed: fenced, never given VMs back; hv-003 was never touched.
    expect(fleet.hosts.find((h) => h.name === 'hv-002')!.fence).toBeDefined();
    expect(fleet.domains.filter((d) => d.vm.host === 'hv-002')).toEqual([]);
    expect(fleet.hosts.find((h) => h.name === 'hv-003')!.fence).toBeUndefined();
    expect(fleet.domains.filter((d) => d.vm.host === 'hv-003').length).toBeGreaterThan(0);
  }, 120_000);

  it('pinned VMs: skip-host leaves their host out with the reason; shutdown-restart shuts them down just before the step and starts them on the same host after, never moved; one that ignores shutdown keeps running and its host is not maintained; killed after the shutdown, the resume starts it', async () => {
    const host = (name: string, rack: string) => ({ name, vcpu: 16, memory_mib: 32768, disk_gib: 200, hypervisor_version: '9.0.0', labels: { rack } });
    const vm = (name: string, on: string, extra: Record<string, unknown> = {}) => ({ name, host: on, vcpu: 2, memory_mib: 2048, ...extra });
    const pinnedPlan = (policy: 'skip-host' | 'shutdown-restart') => ({
      version: 1, name: 'roll', kind: 'rolling',
      fleet: { driver: 'sim', sim: {
        hosts: [host('h1', 'r1'), host('h2', 'r2'), host('h3', 'r3'), host('h4', 'r4')],
        vms: [vm('p1', 'h1'), vm('v1', 'h1'), vm('v2', 'h1'), vm('p2', 'h2', { ignores_shutdown: true }), vm('v3', 'h2'), vm('v4', 'h3'), vm('v5', 'h4'), vm('p3', 'h4', { state: 'shutoff' })],
      } },
      sources: ['h1', 'h2', 'h3', 'h4'],
      rolling: { wave: 1, order: 'listed', pinned: policy, on_failure: 'skip', failure_domain: 'rack', maintenance: { simulate: { duration_s: 300, hypervisor_version: '9.9.0' } }, checks: { hypervisor_version: '9.9.0' } },
      placement: { pinned: ['p1', 'p2', 'p3'] },
      migration: { mode: 'live', cold: { shutdown_timeout_s: 60 } },
    });
    // skip-host: every host holding a pinned VM is left out, said by plan and run; exit 3.
    {
      const dir = tempDir();
      const file = planFile(pinnedPlan('skip-host'), dir);
      const reports = join(dir, 'reports');
      const p = await cli('plan', file);
      expect(p.code, p.stdout + p.stderr).toBe(3);
      expect(p.stdout).toMatch(/h1 is skipped: it holds pinned VMs \(p1\)/);
      const r = await cli('run', file, '--reports', reports);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      const report = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
      expect(Object.fromEntries(report.hosts.map((h) => [h.host, h.status]))).toEqual({ h1: 'skipped', h2: 'skipped', h3: 'maintained', h4: 'skipped' });
      const fleet = fleetAfter(reports);
      expect(fleet.domains.find((d) => d.vm.name === 'p1')!.vm).toMatchObject({ host: 'h1', state: 'running' });
      expect(fleet.hosts.find((h) => h.name === 'h1')!.hypervisor?.version ?? '9.0.0').toBe('9.0.0');
    }
    // shutdown-restart.
    const dir = tempDir();
    const file = planFile(pinnedPlan('shutdown-restart'), dir);
    const reports = join(dir, 'reports');
    const p = await cli('plan', file, '--json');
    expect(JSON.parse(p.stdout).waves.find((w: { hosts: string[] }) => w.hosts.includes('h1')).pinnedRestarted).toEqual(['p1']);
    const r = await cli('run', file, '--reports', reports);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    const report = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
    expect(Object.fromEntries(report.hosts.map((h) => [h.host, h.status]))).toEqual({ h1: 'maintained', h2: 'skipped', h3: 'maintained', h4: 'maintained' });
    const h1 = report.hosts.find((h) => h.host === 'h1')!;
    const p1 = h1.pinned!.find((x) => x.vm === 'p1')!;
    expect(p1.running).toBe(true);
    // Shut down after the evacuation and before the step; started after the checks passed.
    expect(p1.stoppedS).toBeGreaterThanOrEqual(h1.evacuated?.endS ?? 0);
    expect(p1.stoppedS).toBeLessThanOrEqual(h1.maintained!.startS);
    expect(p1.startedS!).toBeGreaterThanOrEqual(h1.checked!.endS);
    expect(report.hosts.find((h) => h.host === 'h2')!.why).toMatch(/p2: .*ignored shutdown/);
    // p3 was shut off before the roll: left off, never started.
    expect(report.hosts.find((h) => h.host === 'h4')!.pinned ?? []).toEqual([]);
    const fleet = fleetAfter(reports);
    const at = (n: string) => fleet.domains.find((d) => d.vm.name === n)!.vm;
    expect(at('p1')).toMatchObject({ host: 'h1', state: 'running' });
    expect(at('p2')).toMatchObject({ host: 'h2', state: 'running' });
    expect(at('p3')).toMatchObject({ host: 'h4', state: 'shutoff' });
    expect(fleet.hosts.find((h) => h.name === 'h1')!.hypervisor?.version).toBe('9.9.0');
    const moved = movesByVm(reports);
    for (const n of ['p1', 'p2', 'p3']) expect(moved.get(n) ?? 0, n).toBe(0);
    expect(readFileSync(join(reports, 'roll.html'), 'utf8')).toContain('Pinned VMs shut down and started again');
    // Killed right after p1 was shut down: the resume maintains h1 and starts p1 there.
    const stopLine = readRollJournal(join(reports, 'roll.roll.jsonl')).find((l) => l.kind === 'pinned-done' && l.action === 'stop')!;
    const dir2 = tempDir();
    const file2 = planFile(pinnedPlan('shutdown-restart'), dir2);
    const reports2 = join(dir2, 'reports');
    const { $ } = await import('zx');
    const killed = await $({ nothrow: true, quiet: true, env: { ...process.env, EVACUATOR_ROLL_KILL_AFTER: String(stopLine.seq) } })`node dist/evacuator.js run ${file2} --reports ${reports2}`;
    expect(killed.signal).toBe('SIGKILL');
    expect(fleetAfter(reports2).domains.find((d) => d.vm.name === 'p1')!.vm.state).toBe('shutoff');
    const resumed = await cli('run', file2, '--reports', reports2, '--resume');
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(3);
    const after = fleetAfter(reports2);
    expect(after.domains.find((d) => d.vm.name === 'p1')!.vm).toMatchObject({ host: 'h1', state: 'running' });
    const report2 = JSON.parse(readFileSync(join(reports2, 'roll.json'), 'utf8')) as RollReport;
    expect(report2.hosts.find((h) => h.host === 'h1')!.status).toBe('maintained');
    expect(report2.hosts.find((h) => h.host === 'h1')!.pinned!.find((x) => x.vm === 'p1')!.running).toBe(true);
  }, 180_000);

  it('--events - on a roll: stdout is JSON lines (every wave\'s migrations and the roll\'s own steps, agreeing with its journal and report), people\'s lines on stderr', async () => {
    const dir = tempDir();
    const plan = cluster(6, 30, 0, 5, { wave: 1 });
    const file = planFile(plan, dir);
    const reports = join(dir, 'reports');
    const r = await cli('run', file, '--reports', reports, '--events', '-');
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; line?: { kind: string; seq: number; host?: string; status?: string }; outcome?: string; vm?: string });
    expect(r.stderr).toMatch(/hosts maintained/);
    const roll = events.filter((e) => e.kind === 'roll').map((e) => e.line!);
    // The roll's own lines, in the journal's order, none missing.
    expect(roll.map((l) => l.seq)).toEqual(readRollJournal(join(reports, 'roll.roll.jsonl')).map((l) => l.seq));
    const report = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
    expect(roll.filter((l) => l.kind === 'host-done').map((l) => [l.host, l.status]).sort()).toEqual(report.hosts.map((h) => [h.host, h.status]).sort());
    expect(events.filter((e) => e.kind === 'move-end' && e.outcome === 'ok').length).toBe(report.totals.migrations);
    // A folder that does not exist: exit 2 before anything, nothing written.
    const bad = await cli('run', file, '--reports', join(dir, 'r2'), '--events', join(dir, 'no', 'such', 'events.jsonl'));
    expect(bad.code).toBe(2);
    expect(existsSync(join(dir, 'r2', 'roll.roll.jsonl'))).toBe(false);
  }, 120_000);

  it('wave: N that cannot hold (every host in one rack) is refused by plan and run with the reason, exit 3, nothing written', async () => {
    const dir = tempDir();
    const file = planFile(cluster(6, 30, 0, 4, { wave: 2 }), dir);
    const reports = join(dir, 'reports');
    const p = await cli('plan', file);
    expect(p.code, p.stdout + p.stderr).toBe(3);
    expect(p.stdout).toMatch(/wave: 2 cannot hold: wave 1 takes 1 host\(s\) \(hv-\d+\): hv-\d+ waits: rack=r1 already in the wave/);
    const r = await cli('run', file, '--reports', reports);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toMatch(/wave: 2 cannot hold.*\n.*wave: auto/);
    expect(existsSync(join(reports, 'roll.roll.jsonl'))).toBe(false);
    expect(existsSync(join(reports, 'roll.fleet.json'))).toBe(false);
  }, 60_000);

  it('bad rolling plans: exit 2 at file:line:col, nothing written', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ maintenance: undefined }, /missing 'maintenance'/],
      [{ maintenance: { command: [] } }, /rolling\.maintenance\.command/],
      [{ wave: 0 }, /rolling\.wave/],
      [{ maintenance: { simulate: { duration_s: 1, fail: ['hv-999'] } } }, /unknown host 'hv-999'/],
      [{ selector: { rack: 'nowhere' } }, /matches no host/],
      [{ hooks: { before_roll: 'rm -rf /' } }, /rolling\.hooks\.before_roll/],
      [{ maintenance: { command: ['patch'], on: 'host' } }, /on: host runs the command over the libvirt driver/],
    ];
    for (const [change, message] of cases) {
      const dir = tempDir();
      const plan = cluster(4, 8, 0, 1);
      Object.assign(plan.rolling!, change);
      const file = planFile(JSON.parse(JSON.stringify(plan)), dir);
      const r = await cli('run', file, '--reports', join(dir, 'reports'));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/roll\.yaml:\d+:\d+/);
      expect(existsSync(join(dir, 'reports'))).toBe(false);
    }
  }, 120_000);
});

describe('rolling maintenance: interrupts, hosts that do not answer, steps that leave children', () => {
  it('SIGINT during a maintenance step: the step finishes, exit 130, no host failed; --resume goes on without redoing any host', async () => {
    const dir = tempDir();
    const log = join(dir, 'steps.log');
    const plan = cluster(5, 20, 0, 6, { wave: 1, order: 'listed' });
    plan.rolling!.maintenance = { command: ['sh', '-c', 'echo "start $EVAC_HOST" >> "$1"; sleep 2; echo "end $EVAC_HOST" >> "$1"', 'step', log] };
    plan.rolling!.checks = { timeout_s: 60, interval_s: 1 };
    const file = planFile(plan, dir);
    const reports = join(dir, 'reports');
    // The signal to evacuator alone, as a terminal's Ctrl-C reaches it (the step runs in a process group of its own).
    const { spawn } = await import('node:child_process');
    const proc = spawn('node', ['dist/evacuator.js', 'run', file, '--reports', reports], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
    for (let i = 0; i < 300; i++) {
      if (existsSync(log) && readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('start')).length === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill('SIGINT');
    expect(await exited, out).toBe(130);
    const lines = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);
    // The step in flight finished.
    expect(lines().filter((l) => l.startsWith('start')).length).toBe(lines().filter((l) => l.startsWith('end')).length);
    const stopped = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
    expect(stopped.hosts.filter((h) => h.status === 'failed' || h.status === 'skipped')).toEqual([]);
    const again = await cli('run', file, '--reports', reports, '--resume');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const starts = lines().filter((l) => l.startsWith('start')).map((l) => l.slice(6)).sort();
    expect(starts).toEqual(['hv-001', 'hv-002', 'hv-003', 'hv-004', 'hv-005']);
    const report = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
    expect(report.totals.maintained).toBe(5);
  }, 120_000);

  it('from an operator\'s attack: SIGINT while pinned VMs are down still checks their host and starts them; a second signal in a hook is an interrupt (130, resumable), not a failed host; --resume of an ended roll touches nothing; an empty program is refused by validate; a paused pinned VM\'s host is skipped by plan and run alike', async () => {
    const simState = (dir: string) => readState(join(dir, 'fleet.json')).saved;
    {
      // SIGINT during h1's step, with p1 shut down: the step ends, h1 is checked, p1 runs again.
      const dir = tempDir();
      const reports = join(dir, 'reports');
      const file = pinnedRoll(dir, { maintenance: { command: ['sh', '-c', 'sleep 1.5'], timeout_s: 30 } });
      const r = await runUntil(file, reports, () => rollLines(reports).some((l) => l.kind === 'step-start' && l.step === 'maintain'), ['SIGINT']);
      expect(r.code, r.out).toBe(130);
      const p1 = simState(dir).domains.find((d) => d.vm.name === 'p1')!.vm;
      expect([p1.host, p1.state], r.out).toEqual(['h1', 'running']);
      const again = await cli('run', file, '--reports', reports, '--resume');
      expect(again.code, again.stdout + again.stderr).toBe(0);
      // --resume of the ended roll: nothing touched, no new roll, the reports written again.
      const lines = rollLines(reports).length;
      const before = JSON.stringify(simState(dir).domains);
      const ended = await cli('run', file, '--reports', reports, '--resume');
      expect(ended.code, ended.stdout + ended.stderr).toBe(0);
      expect(ended.stdout + ended.stderr).toMatch(/already ended .*nothing to resume/);
      expect(rollLines(reports).length).toBe(lines);
      expect(JSON.stringify(simState(dir).domains)).toBe(before);
    }
    {
      // Two SIGTERMs while before_host runs: exit 130, no verdict, and the resume maintains every host.
      const dir = tempDir();
      const reports = join(dir, 'reports');
      const marker = join(dir, 'hook-started');
      const file = pinnedRoll(dir, { maintenance: { simulate: { duration_s: 60 } }, hooks: { before_host: ['sh', '-c', 'touch "$1"; sleep 5', 'hook', marker] } });
      const r = await runUntil(file, reports, () => existsSync(marker), ['SIGTERM', 'SIGTERM']);
      expect(r.code, r.out).toBe(130);
      const end = rollLines(reports).filter((l) => l.kind === 'roll-end').at(-1)!;
      expect(end).toMatchObject({ exitCode: 130, interrupted: true });
      expect(rollLines(reports).filter((l) => l.kind === 'host-done')).toEqual([]);
      const again = await cli('run', file, '--reports', reports, '--resume');
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect((JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport).totals.maintained).toBe(3);
    }
    {
      // An empty program: exit 2 at its place, nothing written.
      const dir = tempDir();
      const file = pinnedRoll(dir, { maintenance: { simulate: { duration_s: 10 } }, checks: { command: [''] } });
      const v = await cli('validate', file);
      expect(v.code).toBe(2);
      expect(v.stderr).toMatch(/rolling\.checks\.command/);
    }
    {
      // A paused pinned VM: plan and run both skip its host (no evacuation of it), with why.
      const dir = tempDir();
      const reports = join(dir, 'reports');
      const file = pinnedRoll(dir, { maintenance: { simulate: { duration_s: 10 } } }, [smallVm('p1', 'h1', { state: 'paused' }), smallVm('v1', 'h1'), smallVm('v2', 'h2'), smallVm('v3', 'h3')]);
      const p = await cli('plan', file);
      expect(p.stdout).toMatch(/h1 is skipped: .*p1 is paused/);
      const r = await cli('run', file, '--reports', reports);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      const fleet = simState(dir);
      expect(fleet.domains.find((d) => d.vm.name === 'v1')!.vm.host).toBe('h1');
      expect(fleet.domains.find((d) => d.vm.name === 'p1')!.vm.state).toBe('paused');
    }
  }, 180_000);

  it('from a second attack: a new roll refuses hosts an earlier run of the plan left fenced (pinned VMs may be off there); a program that does not exist or a NUL in an argument is refused before anything; a second signal in after_host leaves no verdict and the resume runs it again', async () => {
    {
      // Two SIGINTs during h1's step leave p1 off and h1 fenced; a new roll with another reports folder refuses h1.
      const dir = tempDir();
      const reports = join(dir, 'reports');
      const file = pinnedRoll(dir, { maintenance: { command: ['sh', '-c', 'sleep 3'], timeout_s: 30 } });
      const r = await runUntil(file, reports, () => rollLines(reports).some((l) => l.kind === 'step-start' && l.step === 'maintain'), ['SIGINT', 'SIGINT']);
      expect(r.code, r.out).toBe(130);
      expect(r.out).toMatch(/pinned VMs are SHUT OFF.*p1 \(h1\)/);
      const fresh = await cli('run', file, '--reports', join(dir, 'elsewhere'));
      expect(fresh.code, fresh.stdout + fresh.stderr).toBe(5);
      expect(fresh.stderr).toMatch(/still fenced by an earlier run of this plan.*h1/);
      expect(readState(join(dir, 'fleet.json')).saved.domains.find((d) => d.vm.name === 'p1')!.vm.state).toBe('shutoff');
      // clear names the pinned VM still off.
      const cleared = await cli('clear', file, '--reports', reports);
      expect(cleared.stdout).toMatch(/h1: pinned VMs the roll shut down are still SHUT OFF: p1/);
      const resumed = await cli('run', file, '--reports', reports, '--resume');
      expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
      expect(readState(join(dir, 'fleet.json')).saved.domains.find((d) => d.vm.name === 'p1')!.vm.state).toBe('running');
    }
    {
      const dir = tempDir();
      const missing = await cli('run', pinnedRoll(dir, { maintenance: { command: ['/no/such/patch-tool'], timeout_s: 30 } }), '--reports', join(dir, 'r'));
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/programs not found on this machine: rolling\.maintenance\.command: "\/no\/such\/patch-tool"/);
      expect(existsSync(join(dir, 'r', 'roll.roll.jsonl'))).toBe(false);
      const nul = await cli('validate', pinnedRoll(dir, { maintenance: { command: ['sh', '-c', 'a\u0000b'], timeout_s: 30 } }));
      expect(nul.code).toBe(2);
    }
    {
      // Two SIGTERMs in after_host: exit 130 and no verdict; the resume runs after_host again.
      const dir = tempDir();
      const reports = join(dir, 'reports');
      const log = join(dir, 'after.log');
      const file = pinnedRoll(dir, { maintenance: { simulate: { duration_s: 30 } }, hooks: { after_host: ['sh', '-c', 'echo "$EVAC_HOST" >> "$1"; sleep 5', 'hook', log] } });
      const r = await runUntil(file, reports, () => existsSync(log), ['SIGTERM', 'SIGTERM']);
      expect(r.code, r.out).toBe(130);
      expect(rollLines(reports).filter((l) => l.kind === 'host-done')).toEqual([]);
      const again = await cli('run', file, '--reports', reports, '--resume');
      expect(again.code, again.stdout + again.stderr).toBe(0);
      const ran = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      expect(ran.filter((h) => h === ran[0]).length).toBe(2);
    }
  }, 180_000);

  it('SIGKILL during a maintenance step, resumed at once: the resume waits for the step still running before running it again (never two at once on a host)', async () => {
    const dir = tempDir();
    const log = join(dir, 'steps.log');
    const plan = cluster(3, 9, 0, 6, { wave: 1, order: 'listed' });
    // The first host's step long enough that the resume, started at once, finds it still running even on a loaded machine (CI runs the suite's files in parallel); the others short.
    plan.rolling!.maintenance = { command: ['sh', '-c', 'echo "start $EVAC_HOST" >> "$1"; if [ "$EVAC_HOST" = hv-001 ]; then sleep 10; else sleep 1; fi; echo "end $EVAC_HOST" >> "$1"', 'step', log] };
    plan.rolling!.checks = { timeout_s: 60, interval_s: 1 };
    const file = planFile(plan, dir);
    const reports = join(dir, 'reports');
    const { spawn } = await import('node:child_process');
    const proc = spawn('node', ['dist/evacuator.js', 'run', file, '--reports', reports], { stdio: 'ignore' });
    const exited = new Promise((r) => proc.on('close', r));
    for (let i = 0; i < 300; i++) {
      if (existsSync(log) && readFileSync(log, 'utf8').includes('start')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill('SIGKILL');
    await exited;
    const again = await cli('run', file, '--reports', reports, '--resume');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toMatch(/still runs: waiting for it to end/);
    // Per host, starts and ends alternate: no step began while another ran on that host.
    const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    for (const h of ['hv-001', 'hv-002', 'hv-003']) {
      const mine = lines.filter((l) => l.endsWith(` ${h}`)).map((l) => l.split(' ')[0]);
      mine.forEach((k, i) => expect(k, `${h}: ${mine.join(',')}`).toBe(i % 2 === 0 ? 'start' : 'end'));
    }
  }, 120_000);

  it('a host to maintain that does not answer: stop refuses before anything (exit 4, nothing written); skip says it and maintains the others', async () => {
    for (const policy of ['stop', 'skip'] as const) {
      const dir = tempDir();
      const plan = cluster(5, 20, 0, 8, { wave: 1, on_failure: policy });
      plan.fleet.sim!.faults = [{ kind: 'unreachable', host: 'hv-003' }];
      const file = planFile(plan, dir);
      const reports = join(dir, 'reports');
      const r = await cli('run', file, '--reports', reports);
      if (policy === 'stop') {
        expect(r.code, r.stdout + r.stderr).toBe(4);
        expect(r.stderr).toMatch(/hv-003.*does not answer|do not answer: hv-003/);
        expect(existsSync(join(reports, 'roll.roll.jsonl'))).toBe(false);
      } else {
        expect(r.code, r.stdout + r.stderr).toBe(3);
        const report = JSON.parse(readFileSync(join(reports, 'roll.json'), 'utf8')) as RollReport;
        expect(report.hosts.find((h) => h.host === 'hv-003')).toMatchObject({ status: 'skipped', why: expect.stringMatching(/does not answer/) });
        expect(report.totals.maintained).toBe(4);
      }
    }
  }, 120_000);

  it('a step that exits but leaves a child holding its output is done when it exits', async () => {
    const dir = tempDir();
    const plan = cluster(3, 9, 0, 2, { wave: 1 });
    plan.rolling!.maintenance = { command: ['sh', '-c', 'setsid sleep 30 & echo patched'], timeout_s: 20 };
    plan.rolling!.checks = { timeout_s: 60 };
    const file = planFile(plan, dir);
    const t0 = Date.now();
    const r = await cli('run', file, '--reports', join(dir, 'reports'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 60_000);
});

describe('rolling maintenance: CI output', () => {
  it('annotations and the step summary neutralise hostile host names and reasons', async () => {
    const { rollAnnotations, rollSummary } = await import('../scripts/cli/github.ts');
    const { marked } = await import('marked');
    const hostile = ['::error::pwned\r\n::warning::x', '\x1b]0;t\x07[a](https://evil.example)', 'https://evil.example/p www.evil.example', '\u202egnp.exe|x'];
    const report = {
      version: 1, kind: 'rolling', plan: { name: 'p', file: 'p.yaml', digest: 'sha256:0' }, driver: 'sim', startedAt: '', endedAt: '', result: 'incomplete', exitCode: 3,
      waves: [{ wave: 1, hosts: hostile, exitCode: 3, moves: 1, bytes: 1 }],
      hosts: hostile.map((h, i) => ({ host: h, wave: 1, status: i % 2 ? 'failed' : 'skipped', why: hostile[(i + 1) % hostile.length] })),
      vms: [], hooks: [], warnings: [],
      totals: { hosts: 4, maintained: 0, failed: 2, skipped: 2, blocked: 0, migrations: 1, bytes: 1, vmsMoved: 1, movedAgain: 0, moveBack: { migrations: 2, bytes: 2 }, returned: 0 },
    } as unknown as RollReport;
    const lines = rollAnnotations(report);
    expect(lines).toHaveLength(4);
    for (const l of lines) {
      expect(l).toMatch(/^::error title=[^\n\r]*::[^\n\r]*$/);
      expect(l).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
      expect(l.slice(l.indexOf(' title=') + 7, l.indexOf('::', 2))).not.toMatch(/[:,]/);
    }
    const md = rollSummary(report);
    expect(md).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
    for (const line of md.split('\n')) expect(line.trimStart().startsWith('::')).toBe(false);
    expect(marked.parse(md, { gfm: true, async: false })).not.toMatch(/<a\b|<img\b/);
    // The HTML pages (the roll's, and esc() every report uses) show them as visible escapes.
    const { renderRollHtml } = await import('../scripts/rolling/report.ts');
    const html = renderRollHtml({ ...report, hooks: [{ hook: 'before_host', host: hostile[1], ok: false, detail: hostile[0], output: `out\x1b[31mred\u202e\r\n` }] });
    expect(html).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2028\u2029]/);
    expect(html).toContain('\\u202egnp.exe|x');
  });
});
