/**
 * A rolling maintenance on the test cloud: cmp1, cmp2 and cmp3 rolled one at a time, the step
 * restarting the compute's nova-compute (npm run cloud -- restart-compute, which waits until Nova
 * sees it up), the fence a disabled compute service. Counted from Nova, not from the report: each
 * nova-compute restarted exactly once (its pid changed; the step's log), every server ACTIVE on
 * one host, at most one completed migration each in os-migrations, every service enabled after.
 * Then the servers are put back where the cloud built them, for the suite's other files.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { $ } from 'zx';
import { paths } from '../../cloud/config.ts';
import { SERVERS } from '../../cloud/cloud.ts';
import { credentialsFor, OpenStack } from '../../../scripts/fleet/openstack/client.ts';

$.verbose = false;
const REPORTS = join(paths.state, 'roll-reports');
const COMPUTES = ['cmp1', 'cmp2', 'cmp3'];

function planWith(name: string, change: (p: Record<string, any>) => void): string {
  const plan = parse(readFileSync('plans/openstack.yaml', 'utf8'));
  plan.name = name;
  change(plan);
  const file = join(paths.state, `${name}.yaml`);
  writeFileSync(file, stringify(plan));
  return file;
}

describe('a rolling maintenance on the test cloud', () => {
  let admin: OpenStack;
  beforeAll(() => {
    admin = new OpenStack(credentialsFor('evacuator-test', paths.clouds));
  });
  type S = { id: string; name: string; status: string; 'OS-EXT-SRV-ATTR:host': string };
  const servers = async () => admin.list<S>('compute', '/servers/detail?all_tenants=1', 'servers', { microversion: '2.84', marker: (x) => x.id });
  const pid = (h: string) => readFileSync(join(paths.pids, `nova-compute-${h}`), 'utf8').trim();

  it('k = 1 over cmp1-cmp3: each nova-compute restarted once, every server moved at most once (os-migrations), all services enabled after', async () => {
    const before = Object.fromEntries(COMPUTES.map((h) => [h, pid(h)]));
    const since = new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, '');
    const log = join(paths.state, 'roll-restarts.log');
    writeFileSync(log, '');
    const file = planWith('roll', (p) => {
      p.kind = 'rolling';
      delete p.sources;
      delete p.destinations;
      p.rolling = {
        selector: {},
        wave: 1,
        maintenance: { command: ['sh', '-c', 'npx tsx test/cloud/cli.ts restart-compute "$EVAC_HOST" && echo "$EVAC_HOST" >> "$1"', 'step', log], timeout_s: 300 },
        checks: { interval_s: 2, timeout_s: 180 },
      };
      p.migration = { ...p.migration, mode: 'live' };
    });
    const r = await $`node dist/evacuator.js run ${file} --reports ${REPORTS}`.nothrow();
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean).sort()).toEqual(COMPUTES);
    for (const h of COMPUTES) expect(pid(h), h).not.toBe(before[h]);
    const now = await servers();
    for (const s of SERVERS) {
      const found = now.filter((x) => x.name === s.name);
      expect(found, s.name).toHaveLength(1);
      expect(found[0].status, s.name).toBe('ACTIVE');
    }
    // Nova's own record of the migrations since the roll began: at most one completed per server.
    const migrations = (await admin.request<{ migrations: { instance_uuid: string; status: string }[] }>('compute', 'GET', `/os-migrations?changes-since=${since}`, { microversion: '2.80' })).body.migrations;
    const byServer = new Map<string, number>();
    for (const m of migrations.filter((x) => x.status === 'completed')) byServer.set(m.instance_uuid, (byServer.get(m.instance_uuid) ?? 0) + 1);
    for (const s of now) expect(byServer.get(s.id) ?? 0, s.name).toBeLessThanOrEqual(1);
    const services = (await admin.request<{ services: { host: string; status: string; state: string }[] }>('compute', 'GET', '/os-services?binary=nova-compute', { microversion: '2.84' })).body.services;
    for (const s of services) expect([s.host, s.status, s.state]).toEqual([s.host, 'enabled', 'up']);
    const report = JSON.parse(readFileSync(join(REPORTS, 'roll.json'), 'utf8'));
    expect(report.totals.maintained).toBe(3);

    // Back where the cloud built them, for the suite's other files: first the servers of cmp1, then cmp2's.
    for (const home of ['cmp1', 'cmp2']) {
      const at = await servers();
      const away = SERVERS.filter((s) => s.host === home).map((s) => at.find((x) => x.name === s.name)!).filter((x) => x['OS-EXT-SRV-ATTR:host'] !== home);
      if (away.length === 0) continue;
      const back = planWith(`roll-back-${home}`, (p) => {
        p.sources = [...new Set(away.map((x) => x['OS-EXT-SRV-ATTR:host']))].sort();
        p.vms = away.map((x) => x.name);
        p.destinations = { hosts: [home] };
        p.placement = { ...p.placement, assign: Object.fromEntries(away.map((x) => [x.name, home])) };
      });
      const b = await $`node dist/evacuator.js run ${back} --reports ${REPORTS}`.nothrow();
      expect(b.exitCode, b.stdout + b.stderr).toBe(0);
      await $`node dist/evacuator.js clear ${back} --reports ${REPORTS}`.nothrow();
    }
    const end = await servers();
    for (const s of SERVERS) expect([s.name, end.find((x) => x.name === s.name)!['OS-EXT-SRV-ATTR:host']]).toEqual([s.name, s.host]);
  }, 900_000);

  it('rolling.pinned: shutdown-restart on cmp2: its pinned server is stopped for the step and started again on cmp2 (Nova\'s instance actions), never migrated', async () => {
    const s5 = (await servers()).find((x) => x.name === 's5')!;
    expect(s5['OS-EXT-SRV-ATTR:host']).toBe('cmp2');
    const since = new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, '');
    const log = join(paths.state, 'roll-pinned.log');
    writeFileSync(log, '');
    const file = planWith('roll-pinned', (p) => {
      p.kind = 'rolling';
      p.sources = ['cmp2'];
      delete p.destinations;
      p.placement = { ...p.placement, pinned: ['s5'] };
      p.rolling = {
        wave: 1, pinned: 'shutdown-restart',
        // The step notes when it ran (UTC, as Nova writes its times).
        maintenance: { command: ['sh', '-c', 'sleep 1; date -u +%Y-%m-%dT%H:%M:%S >> "$1"; sleep 1', 'step', log], timeout_s: 120 },
        checks: { interval_s: 2, timeout_s: 120 },
      };
    });
    const r = await $`node dist/evacuator.js run ${file} --reports ${REPORTS}`.nothrow();
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const after = (await servers()).find((x) => x.name === 's5')!;
    expect([after.status, after['OS-EXT-SRV-ATTR:host']]).toEqual(['ACTIVE', 'cmp2']);
    const actions = (await admin.request<{ instanceActions: { action: string; start_time: string }[] }>('compute', 'GET', `/servers/${s5.id}/os-instance-actions`, { microversion: '2.84' })).body.instanceActions
      .filter((a) => a.start_time >= since).reverse();
    expect(actions.map((a) => a.action)).toEqual(['stop', 'start']);
    // Stopped before the step ran, started after it.
    const stepAt = readFileSync(log, 'utf8').trim();
    expect(actions[0].start_time.slice(0, 19) <= stepAt && stepAt <= actions[1].start_time.slice(0, 19), `${JSON.stringify(actions)} step ${stepAt}`).toBe(true);
    const migrations = (await admin.request<{ migrations: { instance_uuid: string }[] }>('compute', 'GET', `/os-migrations?changes-since=${since}`, { microversion: '2.80' })).body.migrations;
    expect(migrations.filter((m) => m.instance_uuid === s5.id)).toEqual([]);
    const report = JSON.parse(readFileSync(join(REPORTS, 'roll-pinned.json'), 'utf8'));
    expect(report.hosts.map((h: { host: string; status: string }) => [h.host, h.status])).toEqual([['cmp2', 'maintained']]);
    expect(report.hosts[0].pinned.map((p: { vm: string; running: boolean }) => [p.vm, p.running])).toEqual([['s5', true]]);
  }, 600_000);
});
