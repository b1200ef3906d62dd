/**
 * The OpenStack client and driver under injected faults, fast (no cloud): a local stand-in for
 * keystone and Nova (fake-nova.ts) answers 5xx, resets connections or never answers. Reads are
 * retried with backoff; a write (POST action, PUT, DELETE) is never sent again blindly: its
 * effect is read from Nova's state. A destination whose nova-compute is down is a failed
 * destination ('unreachable' naming it); every wait ends by its bound.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ColdRequest, LiveRequest } from '../../scripts/fleet/driver.ts';
import { credentialsFor, HttpError, isTransient, OpenStack, TransportError } from '../../scripts/fleet/openstack/client.ts';
import { OpenStackDriver, stateOf } from '../../scripts/fleet/openstack/driver.ts';
import type { Fence, Vm } from '../../scripts/fleet/types.ts';
import { tempDir } from '../helpers.ts';
import { FakeNova, type FaultKind } from './fake-nova.ts';

const FAST_RETRY = { retries: 3, minTimeout: 2, maxTimeout: 10, randomize: false };
const TIMING = { pollMs: 5, takenWindowMs: 100, noRecordMs: 500, outageMs: 1000, confirmMs: 500, heartbeatMs: 2000, abortGraceMs: 300 };

let nova: FakeNova;
let clouds: string;
beforeEach(async () => {
  nova = new FakeNova(['cmp1', 'cmp2', 'cmp3']);
  await nova.start();
  clouds = join(tempDir('evac-fake-nova-'), 'clouds.yaml');
  writeFileSync(clouds, nova.cloudsYaml());
});
afterEach(async () => {
  await nova.stop();
});

const client = () => new OpenStack(credentialsFor('fake', clouds), { timeoutMs: 200, retry: FAST_RETRY });
const driver = () => new OpenStackDriver({ cloud: 'fake', clouds_file: clouds, request_timeout_s: 0.2 }, undefined, { ...TIMING, retry: FAST_RETRY });
const vmOn = (id: string, host: string, state: Vm['state'] = 'running'): Vm => ({
  name: nova.servers.get(id)!.name, uuid: id, host, state, resources: { vcpu: 1, memory_mib: 512, disk_gib: 1 }, storage: 'shared', cpuModel: 'qemu64',
});
const cold = (vm: Vm, destination: string, deadlineMs = 2000): ColdRequest => ({ vm, destination, shutdownTimeoutS: 1, forceOff: false, deadlineMs, onProgress: () => {} });
const live = (vm: Vm, destination: string): LiveRequest => ({ vm, destination, maxDowntimeMs: 500, onProgress: () => {} });
const fence = (plan: string): Fence => ({ plan, run: `run-${plan}`, role: 'destination', controller: 'ctl', pid: 42, since: '2026-01-01T00:00:00.000Z' });
const GETSERVICES = /^\/os-services\?/;
const until = async (ok: () => boolean) => {
  for (let i = 0; i < 2000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('the client: transient faults', () => {
  const kinds: FaultKind[] = ['500', '502', '503', 'reset', 'hang'];

  it('a read is retried through any sequence of faults within its budget, and fails with the last fault past it', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.constantFrom(...kinds), { maxLength: 5 }), async (faults) => {
      nova.log = [];
      nova.faults = faults.map((kind) => ({ method: 'GET', path: GETSERVICES, kind }));
      const c = client();
      const got = await c.request<{ services: unknown[] }>('compute', 'GET', '/os-services?binary=nova-compute').then((r) => r.body, (e: unknown) => e);
      const hits = nova.count('GET', GETSERVICES);
      if (faults.length <= FAST_RETRY.retries) {
        expect(got).toMatchObject({ services: expect.any(Array) });
        expect(hits).toBe(faults.length + 1);
      } else {
        expect(isTransient(got)).toBe(true);
        expect(hits).toBe(FAST_RETRY.retries + 1);
      }
      nova.faults = [];
    }), { numRuns: 25 });
  }, 60_000);

  it('a write whose answer is lost (5xx, reset, no answer) is sent once, whatever the fault', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...kinds), fc.boolean(), async (kind, applied) => {
      nova.log = [];
      nova.faults = [{ method: 'PUT', path: /^\/os-services\//, kind, applied, times: 10 }];
      const e = await client().request('compute', 'PUT', '/os-services/svc-cmp1', { body: { status: 'disabled', disabled_reason: 'x' } }).catch((x: unknown) => x);
      expect(isTransient(e)).toBe(true);
      expect(nova.count('PUT', /^\/os-services\//)).toBe(1);
      nova.faults = [];
    }), { numRuns: 15 });
  }, 60_000);

  it('a refused connection never reached the service: a write is sent again, and a refusal (4xx) is not retried', async () => {
    // A port nothing listens on: one this process held and let go.
    const spare = createServer();
    await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
    const port = (spare.address() as AddressInfo).port;
    await new Promise((resolve) => spare.close(resolve));
    const c = new OpenStack({ ...credentialsFor('fake', clouds), authUrl: `http://127.0.0.1:${port}/v3` }, { timeoutMs: 200, retry: FAST_RETRY });
    const e = await c.request('compute', 'POST', '/x').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).kind).toBe('refused');
    expect(c.sent).toBe(FAST_RETRY.retries + 1);

    const ok = client();
    const missing = await ok.request('compute', 'GET', '/servers/nope').catch((x: unknown) => x);
    expect(missing).toBeInstanceOf(HttpError);
    expect(nova.count('GET', /^\/servers\/nope/)).toBe(1);
  });

  it('keystone answering 503 is retried; the password is in no error', async () => {
    const c = client();
    // Faults on the token request are on keystone's path, outside /compute: a hanging nova-api instead.
    nova.faults = [{ method: 'GET', path: GETSERVICES, kind: '503', times: 10 }];
    const e = await c.request('compute', 'GET', '/os-services?binary=nova-compute').catch((x: unknown) => x);
    expect(String((e as Error).message)).not.toContain('not-a-secret-x');
  });
});

describe('Nova states', () => {
  it('maps every status and task to a state with a defined path', () => {
    const cases: [string, string | null, Vm['state']][] = [
      ['ACTIVE', null, 'running'], ['PAUSED', null, 'paused'], ['SHUTOFF', null, 'shutoff'], ['SUSPENDED', null, 'suspended'], ['ERROR', null, 'crashed'],
      ['MIGRATING', 'migrating', 'busy'], ['RESIZE', 'resize_prep', 'busy'], ['VERIFY_RESIZE', null, 'busy'], ['REBUILD', 'rebuilding', 'busy'],
      ['REBOOT', 'rebooting', 'busy'], ['BUILD', 'spawning', 'busy'], ['RESCUE', null, 'busy'], ['SHELVED_OFFLOADED', null, 'busy'], ['ACTIVE', 'image_snapshot', 'busy'],
      ['SHUTOFF', 'powering-on', 'busy'], ['SOMETHING_NEW', null, 'busy'],
    ];
    for (const [status, task, state] of cases) expect(stateOf({ status, 'OS-EXT-STS:task_state': task }), `${status}/${task}`).toBe(state);
  });
});

describe('the driver under faults', () => {
  it('a cold migration whose migrate POST took effect but answered 503 is not sent again; it is confirmed and ends on the destination', async () => {
    const id = nova.addServer('web-1', 'cmp1');
    nova.faults = [{ method: 'POST', path: /\/action$/, kind: '503', applied: true }];
    const out = await driver().coldMigrate(cold(vmOn(id, 'cmp1'), 'cmp2'));
    expect(out.ok, JSON.stringify(out)).toBe(true);
    expect(nova.log.filter((r) => r.method === 'POST').length).toBe(2); // migrate once, confirmResize once
    expect(nova.servers.get(id)).toMatchObject({ host: 'cmp2', status: 'ACTIVE', task: null });
  });

  it('a migrate POST that was not taken (503 before it took effect) is sent once more, decided from Nova showing no migration', async () => {
    const id = nova.addServer('web-1', 'cmp1', 'SHUTOFF');
    nova.faults = [{ method: 'POST', path: /\/action$/, kind: 'reset' }];
    const out = await driver().coldMigrate(cold(vmOn(id, 'cmp1', 'shutoff'), 'cmp2'));
    expect(out.ok, JSON.stringify(out)).toBe(true);
    expect(nova.migrations).toHaveLength(1);
    // A stopped server stays stopped.
    expect(nova.servers.get(id)).toMatchObject({ host: 'cmp2', status: 'SHUTOFF' });
  });

  it('a confirmResize that took effect but got no answer is not sent again', async () => {
    const id = nova.addServer('web-1', 'cmp1');
    nova.faults = [{ method: 'POST', path: /\/action$/, kind: 'hang', applied: true }];
    // The first POST (migrate) hangs after taking effect; then confirm answers 502 after taking effect.
    const d = driver();
    nova.faults.push({ method: 'POST', path: /\/action$/, kind: '502', applied: true });
    const out = await d.coldMigrate(cold(vmOn(id, 'cmp1'), 'cmp3'));
    expect(out.ok, JSON.stringify(out)).toBe(true);
    expect(nova.log.filter((r) => r.method === 'POST').length).toBe(2);
    expect(nova.migrations[0]!.status).toBe('confirmed');
  });

  it('reads failing (5xx, resets, hangs) during the polls do not end a migration', async () => {
    const id = nova.addServer('web-1', 'cmp1');
    nova.faults = [
      { method: 'GET', path: /^\/servers\/[^/]+$/, kind: '503', times: 3 },
      { method: 'GET', path: /^\/os-migrations/, kind: 'reset', times: 2 },
      { method: 'GET', path: /^\/os-migrations/, kind: 'hang', times: 1 },
    ];
    const out = await driver().liveMigrate(live(vmOn(id, 'cmp1'), 'cmp2'));
    expect(out.ok, JSON.stringify(out)).toBe(true);
    expect(nova.servers.get(id)!.host).toBe('cmp2');
  });

  it('a cold migration to a destination whose nova-compute is down posts no migrate (the guest is not shut down) and names the destination', async () => {
    const id = nova.addServer('web-1', 'cmp1');
    nova.kill('cmp2');
    const out = await driver().coldMigrate(cold(vmOn(id, 'cmp1'), 'cmp2'));
    expect(out).toMatchObject({ ok: false, reason: 'unreachable', host: 'cmp2' });
    expect(nova.count('POST', /\/action$/)).toBe(0);
  });

  it('a cold migration towards a destination that dies after the migrate ends by its deadline, saying where the server is stuck', async () => {
    const id = nova.addServer('web-1', 'cmp1');
    const d = driver();
    // Dead, but Nova shows it up still (service_down_time has not passed): the pre-check lets the migrate through.
    nova.kill('cmp2', false);
    const t0 = Date.now();
    const out = await d.coldMigrate(cold(vmOn(id, 'cmp1'), 'cmp2', 800));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(out).toMatchObject({ ok: false, reason: 'timeout' });
    expect(!out.ok && out.detail).toMatch(/resize_prep.*on cmp1.*reset the server's state/);
    expect(nova.servers.get(id)).toMatchObject({ host: 'cmp1', status: 'ACTIVE' });

    // The same, and then Nova shows the compute down: a failed destination, well before the deadline.
    const id2 = nova.addServer('web-2', 'cmp1');
    nova.kill('cmp3', false);
    setTimeout(() => { nova.services.get('cmp3')!.state = 'down'; }, 100);
    const t1 = Date.now();
    const out2 = await d.coldMigrate(cold(vmOn(id2, 'cmp1'), 'cmp3', 60_000));
    expect(Date.now() - t1).toBeLessThan(3000);
    expect(out2).toMatchObject({ ok: false, reason: 'unreachable', host: 'cmp3' });
    expect(!out2.ok && out2.detail).toMatch(/nova-compute on cmp3 is down.*resize_prep/);
  });

  it("a live migration that fails because its destination's nova-compute died is a failed destination; one that fails on a living destination is an error", async () => {
    const id = nova.addServer('web-1', 'cmp1');
    const d = driver();
    const pending = d.liveMigrate(live(vmOn(id, 'cmp1'), 'cmp2'));
    // Dead, and Nova says so only later (service_down_time): the heartbeat that stopped tells.
    await new Promise((r) => setTimeout(r, 3));
    nova.kill('cmp2', false);
    setTimeout(() => { nova.services.get('cmp2')!.state = 'down'; }, 100);
    const out = await pending;
    expect(out).toMatchObject({ ok: false, reason: 'unreachable', host: 'cmp2' });
    expect(nova.servers.get(id)).toMatchObject({ host: 'cmp1', status: 'ACTIVE' });

    // A failure on a destination that keeps reporting in: an error, not a failed destination.
    const id2 = nova.addServer('web-2', 'cmp1');
    nova.refusesLive.add('cmp3');
    const out2 = await d.liveMigrate(live(vmOn(id2, 'cmp1'), 'cmp3'));
    expect(out2).toMatchObject({ ok: false, reason: 'error' });
  });

  it('an abort asked while the live migration is still before its POST: the POST is never sent; asked while it runs: cancelled', async () => {
    const id = nova.addServer('web-1', 'cmp1');
    const d = driver();
    const vm = vmOn(id, 'cmp1');
    // The destination check hangs once (200 ms): the deadline's abort comes during it.
    nova.faults = [{ method: 'GET', path: GETSERVICES, kind: 'hang' }];
    const pending = d.liveMigrate(live(vm, 'cmp2'));
    await new Promise((r) => setTimeout(r, 50));
    await d.abort(vm);
    expect(await pending).toMatchObject({ ok: false, reason: 'aborted' });
    expect(nova.count('POST', /\/action$/)).toBe(0);

    nova.liveSteps = 1000; // long enough to be caught running
    const again = d.liveMigrate(live(vm, 'cmp2'));
    await until(() => nova.migrations.some((m) => m.status === 'running'));
    expect((await d.abort(vm)).ok).toBe(true);
    expect(await again).toMatchObject({ ok: false, reason: 'aborted' });
    expect(nova.servers.get(id)).toMatchObject({ host: 'cmp1', status: 'ACTIVE', task: null });
  });

  it("Nova answering 503 for longer than the client's retries, but within the outage bound: the migration waits it out and happens", async () => {
    const id = nova.addServer('web-1', 'cmp1');
    nova.faults = [{ method: 'GET', path: /./, kind: '503', times: 3 * (FAST_RETRY.retries + 1) }];
    const out = await driver().liveMigrate(live(vmOn(id, 'cmp1'), 'cmp2'));
    expect(out.ok, JSON.stringify(out)).toBe(true);
    expect(nova.count('POST', /\/action$/)).toBe(1);
  });

  it('Nova not answering at all: a live migration ends classified within its bounds, not hung', async () => {
    const id = nova.addServer('web-1', 'cmp1');
    const d = driver();
    const vm = vmOn(id, 'cmp1');
    nova.faults = [{ method: 'GET', path: /./, kind: '503', times: 1000 }];
    const out = await d.liveMigrate(live(vm, 'cmp2'));
    expect(out).toMatchObject({ ok: false, reason: 'unreachable' });
    expect(nova.count('POST', /\/action$/)).toBe(0);
  });
});

describe('destination leases (host aggregates)', () => {
  it('one holder at a time; the holder renews; force takes over; fence(null) lifts it', async () => {
    const [a, b] = [driver(), driver()];
    expect(await a.fence('cmp2', { ...fence('plan-a'), pidStart: '12345' })).toEqual({ ok: true });
    expect(nova.aggregates[0]!.metadata.evacuator_pidStart).toBe('12345');
    expect(await a.fence('cmp2', fence('plan-a'))).toEqual({ ok: true });
    expect(nova.aggregates[0]!.metadata).not.toHaveProperty('evacuator_pidStart');
    expect(nova.aggregates).toMatchObject([{ name: 'evacuator-lease-cmp2', hosts: ['cmp2'], availability_zone: null }]);
    const refused = await b.fence('cmp2', fence('plan-b'));
    expect(refused).toMatchObject({ ok: false, reason: 'refused', holder: { plan: 'plan-a', run: 'run-plan-a', role: 'destination', pid: 42 } });
    expect((await a.fence('cmp2', fence('plan-a'))).ok).toBe(true);
    // A source fence elsewhere by another plan is not disturbed by the lease, nor the lease by it.
    expect((await b.fence('cmp1', { ...fence('plan-b'), role: 'source' })).ok).toBe(true);
    expect(nova.services.get('cmp2')!.status).toBe('enabled');
    expect((await b.fence('cmp2', fence('plan-b'), true)).ok).toBe(true);
    expect(nova.aggregates[0]!.metadata.evacuator_plan).toBe('plan-b');
    expect((await a.fence('cmp2', null)).ok).toBe(true);
    expect(nova.aggregates).toEqual([]);
  });

  it('two runs taking the same lease at once: exactly one holds it', async () => {
    for (let i = 0; i < 5; i++) {
      const got = await Promise.all([driver().fence('cmp3', fence(`p${i}a`)), driver().fence('cmp3', fence(`p${i}b`))]);
      expect(got.filter((g) => g.ok)).toHaveLength(1);
      expect(got.find((g) => !g.ok)).toMatchObject({ reason: 'refused', holder: { role: 'destination' } });
      expect((await driver().fence('cmp3', null)).ok).toBe(true);
    }
  });

  it('creating the lease answered 503 after Nova made it: the run holds it (one create sent); a lift whose answer was lost still lifts it', async () => {
    nova.faults = [{ method: 'POST', path: /^\/os-aggregates$/, kind: '503', applied: true }];
    const d = driver();
    expect((await d.fence('cmp2', fence('plan-a'))).ok).toBe(true);
    expect(nova.count('POST', /^\/os-aggregates$/)).toBe(1);
    expect(nova.aggregates[0]).toMatchObject({ hosts: ['cmp2'], metadata: { evacuator_plan: 'plan-a' } });
    nova.faults = [{ method: 'DELETE', path: /^\/os-aggregates\//, kind: 'reset', applied: true }];
    expect((await d.fence('cmp2', null)).ok).toBe(true);
    expect(nova.count('DELETE', /^\/os-aggregates\//)).toBe(1);
    expect(nova.aggregates).toEqual([]);
  });

  it('a source fence whose PUT answer was lost is judged from the service: taken once, never sent twice', async () => {
    nova.faults = [{ method: 'PUT', path: /^\/os-services\//, kind: '500', applied: true }];
    const d = driver();
    expect((await d.fence('cmp1', { ...fence('plan-a'), role: 'source' })).ok).toBe(true);
    expect(nova.count('PUT', /^\/os-services\//)).toBe(1);
    expect(nova.services.get('cmp1')).toMatchObject({ status: 'disabled', disabled_reason: expect.stringMatching(/^evacuator:.*plan-a/) });
  });
});

describe('polling by list, and the request budget', () => {
  const many = (polling: 'list' | 'per-server') => new OpenStackDriver({ cloud: 'fake', clouds_file: clouds, request_timeout_s: 1, requests_per_second: 1000 }, undefined, { ...TIMING, retry: FAST_RETRY, polling });
  const PER_SERVER_READS = /^\/(servers\/[^/?]+|os-migrations\?instance_uuid=.*|servers\/[^/]+\/migrations)$/;

  it('30 live migrations at once wait on one poller: its two listings a poll serve them all, and no server or migration is read on its own', async () => {
    const counts: Record<string, { total: number; perServer: number; polls: number }> = {};
    for (const polling of ['per-server', 'list'] as const) {
      nova.log = [];
      const ids = Array.from({ length: 30 }, (_, i) => nova.addServer(`${polling}-${i}`, 'cmp1'));
      const d = many(polling);
      const out = await Promise.all(ids.map((id, i) => d.liveMigrate(live(vmOn(id, 'cmp1'), i % 2 ? 'cmp2' : 'cmp3'))));
      expect(out.filter((o) => !o.ok)).toEqual([]);
      for (const [i, id] of ids.entries()) expect(nova.servers.get(id)).toMatchObject({ host: i % 2 ? 'cmp2' : 'cmp3', status: 'ACTIVE' });
      const r = d.requests();
      counts[polling] = { total: r.total, perServer: nova.log.filter((l) => l.method === 'GET' && PER_SERVER_READS.test(l.path)).length, polls: r.polls };
      expect(nova.count('POST', /\/action$/)).toBe(30);
      // Every request the fake saw was counted (plus keystone's token, which the fake does not log).
      expect(r.total).toBe(nova.log.length + 1);
    }
    expect(counts['list']!.perServer).toBe(0);
    expect(nova.count('GET', /^\/servers\/detail\?all_tenants=1&changes-since=/)).toBe(counts['list']!.polls);
    expect(counts['per-server']!.perServer).toBeGreaterThanOrEqual(30 * 3);
    expect(counts['list']!.total).toBeLessThan(counts['per-server']!.total / 2);
  });

  it('a retry of the same server after a failed live migration does not take the failed record for its own', async () => {
    const id = nova.addServer('web-1', 'cmp1');
    const d = many('list');
    nova.refusesLive.add('cmp3');
    expect(await d.liveMigrate(live(vmOn(id, 'cmp1'), 'cmp3'))).toMatchObject({ ok: false, reason: 'error' });
    expect(await d.liveMigrate(live(vmOn(id, 'cmp1'), 'cmp2'))).toMatchObject({ ok: true });
    expect(nova.servers.get(id)).toMatchObject({ host: 'cmp2', status: 'ACTIVE' });
  });

  it('a cold migration waits on the poller too: migrate, VERIFY_RESIZE, confirm, with no read of the server on its own', async () => {
    const id = nova.addServer('db-1', 'cmp1');
    nova.log = [];
    const out = await many('list').coldMigrate(cold(vmOn(id, 'cmp1'), 'cmp2'));
    expect(out.ok, JSON.stringify(out)).toBe(true);
    expect(nova.servers.get(id)).toMatchObject({ host: 'cmp2', status: 'ACTIVE' });
    expect(nova.log.filter((l) => l.method === 'GET' && PER_SERVER_READS.test(l.path))).toEqual([]);
  });

  it('the budget holds every request of a client to its rate: 60 reads at 50 a second take at least 0.2 s', async () => {
    const c = new OpenStack(credentialsFor('fake', clouds), { timeoutMs: 1000, retry: FAST_RETRY, requestsPerSecond: 50 });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 59 }, () => c.request('compute', 'GET', '/os-services?binary=nova-compute')));
    // 60 with keystone's token; a burst of 50, then 10 at 50 a second.
    expect(c.sent).toBe(60);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(180);
    expect(c.budget.waitedMs).toBeGreaterThan(0);
    expect([...c.routes]).toEqual([['POST /identity/v3/auth/tokens', 1], ['GET /compute/os-services?binary', 59]]);
  });
});
