/**
 * A rolling maintenance on the real testbed: hv1, hv2 and hv3 rolled one at a time, the
 * maintenance step restarting the host's libvirtd (run on the host itself over the driver's SSH:
 * on: host), the checks asking the new libvirtd for its version (a command run here, through ssh). Counted from the hosts themselves, not from the report: each libvirtd restarted exactly
 * once (its pid changed, the step's own log), every guest on exactly one host, running, its tick
 * counter never reset, moved at most once (the waves' journals), and no fence left.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { readJournal } from '../../scripts/runner/journal.ts';
import { DIR, paths } from '../testbed/layout.ts';
import { GUESTS } from '../testbed/testbed.ts';
import { lastTick, planWith, reportOf, ssh, useTestbed } from './helpers.ts';

const HOSTS = ['hv1', 'hv2', 'hv3'];
const pidOf = async (h: string) => (await ssh(h, 'cat', '/run/libvirtd.pid')).stdout.trim();
const names = async (h: string, all = true) => (await ssh(h, 'virsh', 'list', ...(all ? ['--all'] : []), '--name')).stdout.split('\n').filter(Boolean);

describe('a rolling maintenance on the testbed', () => {
  useTestbed();

  it('k = 1 over hv1-hv3: each libvirtd restarted exactly once, every guest moved at most once and never rebooted, no fence left', async () => {
    const before = Object.fromEntries(await Promise.all(HOSTS.map(async (h) => [h, await pidOf(h)] as const)));
    const ticks = Object.fromEntries(await Promise.all(GUESTS.map(async (g) => [g.name, await lastTick('hv1', g.name)] as const)));
    const log = `${DIR}/restarts.log`;
    // The step, run on the host itself over the driver's SSH (on: host): stop the host's libvirtd
    // (by its pid file: the hosts share one PID namespace), wait until it is gone, start it again;
    // then note the host (from the environment the roll gives it) in the step's own log.
    const restart = 'p=$(cat /run/libvirtd.pid) && kill "$p" && while kill -0 "$p" 2>/dev/null; do sleep 0.2; done; libvirtd --daemon --config /etc/libvirt/libvirtd.conf && echo "$EVAC_HOST" >> "$1"';
    const file = planWith('roll', (p) => {
      p.kind = 'rolling';
      delete p.sources;
      delete p.destinations;
      p.rolling = {
        selector: {},
        wave: 1,
        maintenance: { command: ['sh', '-c', restart, 'step', log], on: 'host', timeout_s: 120 },
        checks: { interval_s: 2, timeout_s: 120, command: ['sh', '-c', 'ssh -F "$1" "$EVAC_HOST" virsh -c qemu:///system version', 'check', paths.sshConfig] },
      };
    });
    const r = await $`node dist/evacuator.js run ${file} --reports ${`${DIR}/reports`}`.nothrow();
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    // Each host's libvirtd restarted exactly once.
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean).sort()).toEqual(HOSTS);
    for (const h of HOSTS) expect(await pidOf(h), h).not.toBe(before[h]);
    // Every guest on exactly one host, running, never rebooted.
    const on = new Map<string, string[]>();
    for (const h of HOSTS) for (const n of await names(h)) on.set(n, [...on.get(n) ?? [], h]);
    for (const g of GUESTS) {
      expect(on.get(g.name), g.name).toHaveLength(1);
      const h = on.get(g.name)![0];
      expect(await names(h, false), g.name).toContain(g.name);
      expect(await lastTick(h, g.name), g.name).toBeGreaterThan(ticks[g.name]);
    }
    // Moved at most once: every migration the waves' journals say ended well.
    const moves = new Map<string, number>();
    for (const w of (await $`ls ${`${DIR}/reports/roll.roll`}`).stdout.split('\n').filter(Boolean)) {
      for (const l of readJournal(`${DIR}/reports/roll.roll/${w}/roll.journal.jsonl`)) if (l.kind === 'move-end' && l.outcome === 'ok') moves.set(l.vm, (moves.get(l.vm) ?? 0) + 1);
    }
    for (const g of GUESTS) expect(moves.get(g.name) ?? 0, g.name).toBeLessThanOrEqual(1);
    const report = reportOf('roll');
    expect(report.totals.maintained).toBe(3);
    expect(report.hosts.map((h: { host: string; status: string }) => [h.host, h.status]).sort()).toEqual(HOSTS.map((h) => [h, 'maintained']));
    // No fence left: clear finds none.
    const cleared = await $`node dist/evacuator.js clear ${file} --reports ${`${DIR}/reports`}`.nothrow();
    expect(cleared.stdout).toMatch(/no host is fenced by plan 'roll'/);
  }, 480_000);

  it('rolling.pinned: shutdown-restart: a pinned guest is shut down on its host for the step and started there again (a new domain id, the same host, never defined elsewhere); the others move off', async () => {
    // The host holding g1 now, whatever the test before left.
    const at = async (g: string) => (await Promise.all(HOSTS.map(async (h) => ((await names(h)).includes(g) ? h : undefined)))).filter(Boolean) as string[];
    const [home] = await at('g1');
    const qemuPid = async () => (await ssh(home, 'virsh', 'domid', 'g1')).stdout.trim();
    const pidBefore = await qemuPid();
    const others = (await names(home)).filter((n) => n !== 'g1');
    const log = `${DIR}/pinned-steps.log`;
    const file = planWith('roll-pinned', (p) => {
      p.kind = 'rolling';
      p.sources = [home];
      delete p.destinations;
      p.placement = { ...p.placement, pinned: ['g1'] };
      p.migration = { ...p.migration, cold: { shutdown_timeout_s: 30, force_off: true } };
      p.rolling = {
        wave: 1, pinned: 'shutdown-restart',
        // The step sees g1 shut off on its host (virsh domstate), and logs it.
        maintenance: { command: ['sh', '-c', 'echo "$EVAC_HOST $(virsh -c qemu:///system domstate g1)" >> "$1"', 'step', log], on: 'host', timeout_s: 60 },
        checks: { interval_s: 2, timeout_s: 60 },
      };
    });
    const r = await $`node dist/evacuator.js run ${file} --reports ${`${DIR}/reports`}`.nothrow();
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(log, 'utf8').trim()).toBe(`${home} shut off`);
    // g1 runs on its host again, in a new QEMU, and nowhere else.
    expect(await at('g1')).toEqual([home]);
    expect(await names(home, false)).toContain('g1');
    expect(await qemuPid()).not.toBe(pidBefore);
    // The others left the host; each on one host.
    for (const g of others) expect((await at(g)).filter((h) => h !== home), g).toHaveLength(1);
    const report = reportOf('roll-pinned');
    const h = report.hosts.find((x: { host: string }) => x.host === home);
    expect(h.status).toBe('maintained');
    expect(h.pinned.map((p: { vm: string; running: boolean }) => [p.vm, p.running])).toEqual([['g1', true]]);
    const cleared = await $`node dist/evacuator.js clear ${file} --reports ${`${DIR}/reports`}`.nothrow();
    expect(cleared.stdout).toMatch(/no host is fenced by plan 'roll-pinned'/);
  }, 300_000);
});
