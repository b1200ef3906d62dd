/**
 * Attacks on the OpenStack driver in the real test cloud: a destination's nova-compute killed
 * during a run, a cold migration towards a destination killed after planning, nova-api killed
 * and frozen during a run, servers shut off, paused and suspended on a source, and two plans
 * leasing one destination. The file boots its own servers (f-*, on cmp2) and deletes them at the
 * end, starts every compute and nova-api it stopped, and touches none of s1..s5, so the other
 * files of the tier run before or after it unchanged.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { $, sleep } from 'zx';
import { freezeNovaApi, startCompute, startNovaApi, stopCompute, stopNovaApi } from '../cloud/cloud.ts';
import { COMPUTES, paths } from '../cloud/config.ts';
import { credentialsFor, OpenStack } from '../../scripts/fleet/openstack/client.ts';

$.verbose = false;
const REPORTS = join(paths.state, 'fault-reports');
const MV = { microversion: '2.84' };

interface NovaServer { id: string; name: string; status: string; 'OS-EXT-SRV-ATTR:host': string; 'OS-EXT-STS:task_state': string | null; 'OS-EXT-STS:power_state': number }

/** A plan of f-* servers from cmp2 to the given destinations. */
function plan(name: string, vms: string[], destinations: string[], change: (p: Record<string, any>) => void = () => {}, source = 'cmp2'): string {
  const p = parse(readFileSync('plans/openstack.yaml', 'utf8'));
  p.name = name;
  p.sources = [source];
  p.vms = vms;
  p.destinations = { hosts: destinations };
  change(p);
  const file = join(paths.state, `${name}.yaml`);
  writeFileSync(file, stringify(p));
  return file;
}

const journalOf = (name: string) => join(REPORTS, `${name}.journal.jsonl`);
const reportOf = (name: string) => JSON.parse(readFileSync(join(REPORTS, `${name}.json`), 'utf8'));
const lines = (name: string) => (existsSync(journalOf(name)) ? readFileSync(journalOf(name), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>) : []);
async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not after ${ms / 1000} s`);
    await sleep(100);
  }
}
/** nova-api running again if a test froze it (a killed one has no process to thaw). */
const thaw = () => {
  try {
    freezeNovaApi(false);
  } catch { /* not running: startNovaApi starts it */ }
};
const run = (file: string) => $`node dist/evacuator.js run ${file} --reports ${REPORTS}`.nothrow();

describe('faults in the real cloud', () => {
  let admin: OpenStack;
  const made: string[] = [];
  const server = async (id: string) => (await admin.request<{ server: NovaServer }>('compute', 'GET', `/servers/${id}`, MV)).body.server;
  const act = (id: string, body: object) => admin.request('compute', 'POST', `/servers/${id}/action`, { ...MV, body });
  const waitFor = (id: string, status: string) => until(`server ${id} ${status}`, async () => {
    const s = await server(id);
    return s.status === status && !s['OS-EXT-STS:task_state'];
  });
  const actions = async (id: string) => (await admin.request<{ instanceActions: { action: string }[] }>('compute', 'GET', `/servers/${id}/os-instance-actions`, MV)).body.instanceActions.map((a) => a.action);
  const migrations = async (id: string) => (await admin.request<{ migrations: { id: number }[] }>('compute', 'GET', `/os-migrations?instance_uuid=${id}&migration_type=live-migration`, MV)).body.migrations;
  const aggregates = async () => (await admin.request<{ aggregates: { name: string; hosts: string[]; metadata: Record<string, string> }[] }>('compute', 'GET', '/os-aggregates', MV)).body.aggregates;

  /** Boot f-servers on cmp2 (or on: host), ACTIVE; their ids by name. */
  async function boot(...names: string[]): Promise<Record<string, string>> {
    const on = names[0]!.startsWith('@') ? names.shift()!.slice(1) : 'cmp2';
    const list = async (path: string, key: string) => (await admin.request<Record<string, { id: string; name: string }[]>>(path.startsWith('/v2') ? 'image' : 'compute', 'GET', path)).body[key]!;
    const flavor = (await list('/flavors', 'flavors')).find((f) => f.name === 'm1.test')!.id;
    const image = (await list('/v2/images', 'images')).find((i) => i.name === 'blank')!.id;
    const ids: Record<string, string> = {};
    for (const name of names) {
      ids[name] = (await admin.request<{ server: { id: string } }>('compute', 'POST', '/servers', {
        microversion: '2.74', body: { server: { name, imageRef: image, flavorRef: flavor, networks: 'none', host: on } },
      })).body.server.id;
      made.push(ids[name]);
    }
    for (const id of Object.values(ids)) await waitFor(id, 'ACTIVE');
    return ids;
  }

  beforeAll(async () => {
    admin = new OpenStack(credentialsFor('evacuator-test', paths.clouds));
    // openstack.test.ts, when it ran first, left cmp1's nova-compute stopped.
    await startNovaApi();
    for (const c of COMPUTES) await startCompute(c);
    // Every compute enabled: a fence another file's failed test left would skew every attack here.
    const services = (await admin.request<{ services: { id: string; status: string }[] }>('compute', 'GET', '/os-services?binary=nova-compute', MV)).body.services;
    for (const svc of services.filter((x) => x.status !== 'enabled')) await admin.request('compute', 'PUT', `/os-services/${svc.id}`, { ...MV, body: { status: 'enabled' } });
    await $`mkdir -p ${REPORTS}`;
  }, 180_000);

  /** Delete the servers this file booted (the project's quota is 10 instances). */
  async function removeMade(): Promise<void> {
    for (const id of made) await admin.request('compute', 'DELETE', `/servers/${id}`, MV).catch(() => {});
    await until('f-servers deleted', async () => {
      const left = (await admin.request<{ servers: { id: string }[] }>('compute', 'GET', '/servers?all_tenants=1', MV)).body.servers;
      return !left.some((s) => made.includes(s.id));
    });
    made.length = 0;
  }

  afterEach(async () => {
    thaw();
    await startNovaApi();
    await removeMade();
  }, 180_000);

  afterAll(async () => {
    thaw();
    await startNovaApi();
    for (const c of COMPUTES) await startCompute(c);
    await removeMade();
    // What a run of this file left leased is lifted (the assertions below say whether one did).
    for (const name of ['os-f-killed', 'os-f-cold-dead', 'os-f-api', 'os-f-states', 'os-f-lease-a', 'os-f-lease-b']) {
      if (existsSync(join(paths.state, `${name}.yaml`))) await $`node dist/evacuator.js clear ${join(paths.state, `${name}.yaml`)} --force --reports ${REPORTS}`.nothrow();
    }
  }, 300_000);

  it("a destination whose nova-compute is killed mid-run: its VMs go to the other destination, none is left shut off, the report says why", async () => {
    const ids = await boot('f-k1', 'f-k2');
    const name = 'os-f-killed';
    const child = run(plan(name, ['f-k*'], ['cmp1', 'cmp3'], (p) => { p.placement.policy = 'spread'; }));
    await until('planned', () => lines(name).some((l) => l.kind === 'planned'));
    const planned = lines(name).find((l) => l.kind === 'planned')!;
    const moves = planned.moves as { vm: string; destination: string }[];
    const killed = moves[0]!.destination;
    const other = killed === 'cmp1' ? 'cmp3' : 'cmp1';
    stopCompute(killed);
    let r;
    try {
      r = await child;
    } finally {
      await startCompute(killed);
    }
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const report = reportOf(name);
    for (const vmName of ['f-k1', 'f-k2']) {
      const s = await server(ids[vmName]!);
      expect([s.status, s['OS-EXT-SRV-ATTR:host']], vmName).toEqual(['ACTIVE', other]);
    }
    const sent = report.vms.filter((v: { attempts: { destination: string }[] }) => v.attempts.some((a) => a.destination === killed));
    expect(sent.length).toBeGreaterThan(0);
    for (const v of sent) {
      expect(v.attempts[0]).toMatchObject({ destination: killed, outcome: 'unreachable' });
      expect(v.attempts[0].detail).toMatch(new RegExp(`nova-compute on ${killed} is down`));
      expect(v.attempts.map((a: { method: string }) => a.method)).not.toContain('cold');
      expect(v).toMatchObject({ status: 'moved', host: other });
    }
  }, 400_000);

  it('a cold migration towards a destination killed after planning ends by its deadline, the guest never shut down, the report saying where it is stuck', async () => {
    const ids = await boot('f-c1');
    const name = 'os-f-cold-dead';
    // Deadline: shutdown 4 s + 1.5 GiB x 8 s = 16 s.
    const child = run(plan(name, ['f-c1'], ['cmp3'], (p) => {
      p.migration = { ...p.migration, mode: 'cold', completion_timeout_s_per_gib: 8, cold: { allow: ['*'], shutdown_timeout_s: 4 } };
    }));
    await until('planned', () => lines(name).some((l) => l.kind === 'planned'));
    stopCompute('cmp3');
    const t0 = Date.now();
    let r;
    let s;
    try {
      r = await child;
      // Read before cmp3 comes back: back, it takes the move Nova queued for it (VERIFY_RESIZE there).
      s = await server(ids['f-c1']!);
    } finally {
      await startCompute('cmp3');
    }
    const took = (Date.now() - t0) / 1000;
    expect(r.exitCode, r.stdout + r.stderr).toBe(3);
    // The deadline (16 s), a look at the destination, the read-back and the report: well under a minute and a half.
    expect(took).toBeLessThan(90);
    const v = reportOf(name).vms[0];
    expect(v.status).toBe('left');
    expect(v.attempts[0].method).toBe('cold');
    expect(['timeout', 'unreachable']).toContain(v.attempts[0].outcome);
    expect(v.attempts[0].detail).toMatch(/resize_prep.*cmp2.*(reset the server's state|comes back)/);
    // Nova queued the move (RESIZE, task resize_prep); the guest still runs (power state 1) on its source.
    expect([s.status, s['OS-EXT-STS:task_state'], s['OS-EXT-STS:power_state'], s['OS-EXT-SRV-ATTR:host']]).toEqual(['RESIZE', 'resize_prep', 1, 'cmp2']);
  }, 300_000);

  it('nova-api frozen (no answers) and then killed and restarted (refused connections) during a run: the run finishes, every server moved, each migration asked for once', async () => {
    const ids = await boot('f-a1', 'f-a2');
    const name = 'os-f-api';
    const child = run(plan(name, ['f-a*'], ['cmp3'], (p) => {
      p.fleet.openstack.request_timeout_s = 3;
      p.migration = { ...p.migration, mode: 'live' };
    }));
    let r;
    try {
      await until('first move', () => lines(name).some((l) => l.kind === 'move-start'));
      freezeNovaApi(true);
      await sleep(8000);
      freezeNovaApi(false);
      await until('second move', () => lines(name).filter((l) => l.kind === 'move-start').length >= 2, 180_000);
      // Killed only once Nova has taken the second move (its migration record made). Killed while it
      // handles os-migrateLive, after it marked the server MIGRATING and before it sent the task on,
      // it leaves the server stuck with no migration: the run then, rightly, leaves it in place
      // (exit 3; CI on 2026-12-06 hit that window under load).
      await until('second move recorded by Nova', async () => (await migrations(ids['f-a2']!)).length > 0, 180_000);
      stopNovaApi();
      await sleep(2000);
    } finally {
      thaw();
      await startNovaApi();
      r = await child;
    }
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    for (const n of ['f-a1', 'f-a2']) {
      const s = await server(ids[n]!);
      expect([s.status, s['OS-EXT-SRV-ATTR:host']], n).toEqual(['ACTIVE', 'cmp3']);
      expect((await actions(ids[n]!)).filter((a) => a === 'live-migration'), n).toHaveLength(1);
    }
  }, 400_000);

  it('shut-off, paused and suspended servers on a source: shut-off moves cold and arrives shut off, paused moves live and stays paused, suspended is not moved, reported with the reason', async () => {
    const ids = await boot('f-off', 'f-pause', 'f-susp');
    await act(ids['f-off']!, { 'os-stop': null });
    await act(ids['f-pause']!, { pause: null });
    await act(ids['f-susp']!, { suspend: null });
    await Promise.all([waitFor(ids['f-off']!, 'SHUTOFF'), waitFor(ids['f-pause']!, 'PAUSED'), waitFor(ids['f-susp']!, 'SUSPENDED')]);
    const name = 'os-f-states';
    const r = await run(plan(name, ['f-off', 'f-pause', 'f-susp'], ['cmp3']));
    expect(r.exitCode, r.stdout + r.stderr).toBe(3);
    const vms = new Map((reportOf(name).vms as { vm: string }[]).map((v) => [v.vm, v as Record<string, any>]));
    expect(vms.get('f-off')).toMatchObject({ status: 'moved', method: 'cold', host: 'cmp3' });
    expect(vms.get('f-pause')).toMatchObject({ status: 'moved', method: 'live', host: 'cmp3' });
    // Not placed at all: the planner reports it with the reason, and nothing is asked of Nova for it.
    expect(vms.get('f-susp')).toMatchObject({ status: 'unplaced', host: 'cmp2', attempts: [] });
    expect(vms.get('f-susp')!.reason).toMatch(/suspended/);
    const [off, paused, susp] = await Promise.all([server(ids['f-off']!), server(ids['f-pause']!), server(ids['f-susp']!)]);
    expect([off.status, off['OS-EXT-SRV-ATTR:host']]).toEqual(['SHUTOFF', 'cmp3']);
    expect([paused.status, paused['OS-EXT-SRV-ATTR:host']]).toEqual(['PAUSED', 'cmp3']);
    expect([susp.status, susp['OS-EXT-SRV-ATTR:host']]).toEqual(['SUSPENDED', 'cmp2']);
  }, 300_000);

  it('two plans leasing the same destination: the second is refused naming the first while it runs; the lease (an aggregate) lets migrations in and is gone after', async () => {
    // Different sources (a source is fenced too), one destination.
    const ids = { ...await boot('f-l1'), ...await boot('@cmp1', 'f-l2') };
    const a = plan('os-f-lease-a', ['f-l1'], ['cmp3'], (p) => { p.migration = { ...p.migration, mode: 'live' }; });
    const b = plan('os-f-lease-b', ['f-l2'], ['cmp3'], (p) => { p.migration = { ...p.migration, mode: 'live' }; }, 'cmp1');
    const first = run(a);
    await until('a leased cmp3', () => lines('os-f-lease-a').some((l) => l.kind === 'move-start'));
    expect((await aggregates()).find((g) => g.name === 'evacuator-lease-cmp3')).toMatchObject({ hosts: ['cmp3'], metadata: { evacuator_plan: 'os-f-lease-a', evacuator_role: 'destination' } });
    const second = await run(b);
    expect(second.exitCode, second.stdout + second.stderr).toBe(5);
    expect(second.stderr).toMatch(/cmp3.*held by plan 'os-f-lease-a'.*moving VMs onto it/);
    const r = await first;
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect((await server(ids['f-l1']!))['OS-EXT-SRV-ATTR:host']).toBe('cmp3');
    expect((await aggregates()).filter((g) => g.name.startsWith('evacuator-lease-'))).toEqual([]);
    // Free again: b runs now.
    const again = await run(b);
    expect(again.exitCode, again.stdout + again.stderr).toBe(0);
    expect((await server(ids['f-l2']!))['OS-EXT-SRV-ATTR:host']).toBe('cmp3');
  }, 300_000);
});
