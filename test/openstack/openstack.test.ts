/**
 * The OpenStack driver against a real Nova (npm run cloud -- up: keystone, placement, glance,
 * neutron, nova api/conductor/scheduler and three nova-computes on the fake driver, on
 * 127.0.0.1). Slow: its own suite (npm run test:openstack, root).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { $, sleep } from 'zx';
import { paths, TOKEN_LIFETIME_S } from '../cloud/config.ts';
import { SERVERS, secrets, stopCompute } from '../cloud/cloud.ts';
import { credentialsFor, OpenStack } from '../../scripts/fleet/openstack/client.ts';

$.verbose = false;
const REPORTS = join(paths.state, 'reports');

function planWith(name: string, change: (p: Record<string, any>) => void): string {
  const plan = parse(readFileSync('plans/openstack.yaml', 'utf8'));
  plan.name = name;
  change(plan);
  const file = join(paths.state, `${name}.yaml`);
  writeFileSync(file, stringify(plan));
  return file;
}

/** A plan moving one server to one host, live or cold; from: the plan's source (else plans/openstack.yaml's, cmp1). */
function moveOne(name: string, m: { vm: string; to: string; mode: 'live' | 'cold'; from?: string }, change: (p: Record<string, any>) => void = () => {}): string {
  return planWith(name, (p) => {
    if (m.from) p.sources = [m.from];
    p.vms = [m.vm];
    p.destinations = { hosts: [m.to] };
    p.migration = { ...p.migration, mode: m.mode };
    change(p);
  });
}

const run = (file: string) => $`node dist/evacuator.js run ${file} --reports ${REPORTS}`.nothrow();
const reportOf = (name: string) => JSON.parse(readFileSync(join(REPORTS, `${name}.json`), 'utf8'));

describe('the openstack driver against a real Nova', () => {
  let admin: OpenStack;
  const where = async () => {
    const servers = await admin.list<{ id: string; name: string; status: string; 'OS-EXT-SRV-ATTR:host': string }>('compute', '/servers/detail?all_tenants=1', 'servers', { microversion: '2.84', marker: (x) => x.id });
    return new Map(servers.map((s) => [s.name, { host: s['OS-EXT-SRV-ATTR:host'], status: s.status }]));
  };
  const actions = async (name: string, id?: string) => {
    if (!id) id = (await admin.request<{ servers: { id: string }[] }>('compute', 'GET', `/servers?all_tenants=1&name=^${name}$`, { microversion: '2.84' })).body.servers[0]!.id;
    return (await admin.request<{ instanceActions: { action: string }[] }>('compute', 'GET', `/servers/${id}/os-instance-actions`, { microversion: '2.84' })).body.instanceActions.map((a) => a.action);
  };
  const service = async (host: string) => (await admin.request<{ services: { host: string; status: string; disabled_reason: string | null }[] }>('compute', 'GET', `/os-services?binary=nova-compute&host=${host}`, { microversion: '2.84' })).body.services[0];

  // The cloud is up (test/openstack/cloud.setup.ts), as it was built: the contract's file, when it
  // runs first, puts back what it moved.
  beforeAll(() => {
    admin = new OpenStack(credentialsFor('evacuator-test', paths.clouds));
  });

  it('token renewal: a token keystone revoked is replaced on the 401; a token near its end is renewed before use', async () => {
    // A user of its own, so that revoking its tokens touches no one else's.
    const password = randomBytes(12).toString('hex');
    const id = async (path: string, key: string, name: string) => (await admin.request<Record<string, { id: string }[]>>('identity', 'GET', `${path}?name=${name}`)).body[key][0]!.id;
    const user = (await admin.request<{ user: { id: string } }>('identity', 'POST', '/users', { body: { user: { name: 'evac-renew', password, domain_id: 'default' } } })).body.user.id;
    await admin.request('identity', 'PUT', `/projects/${await id('/projects', 'projects', 'admin')}/users/${user}/roles/${await id('/roles', 'roles', 'member')}`);
    const creds = { ...credentialsFor('evacuator-test', paths.clouds), username: 'evac-renew', password };

    const client = new OpenStack(creds);
    const projects = async (c: OpenStack) => (await c.request<{ projects: { name: string }[] }>('identity', 'GET', '/auth/projects')).body.projects.map((p) => p.name);
    expect(await projects(client)).toEqual(['admin']);
    expect(client.authentications).toBe(1);
    // Disabling a user makes keystone revoke its tokens; enabled again, the client's token is still revoked.
    await admin.request('identity', 'PATCH', `/users/${user}`, { body: { user: { enabled: false } } });
    await admin.request('identity', 'PATCH', `/users/${user}`, { body: { user: { enabled: true } } });
    await sleep(1100); // a token issued in the revocation's second counts as revoked
    expect(await projects(client)).toEqual(['admin']);
    expect(client.authentications).toBe(2);

    // Renewed when less than renewBeforeMs is left: here, 2 s after it was issued.
    const renewing = new OpenStack(creds, { renewBeforeMs: (TOKEN_LIFETIME_S - 2) * 1000 });
    await projects(renewing);
    await projects(renewing);
    expect(renewing.authentications).toBe(1);
    await sleep(2500);
    expect(await projects(renewing)).toEqual(['admin']);
    expect(renewing.authentications).toBe(2);
  }, 60_000);

  it('a deadline abort on a live migration leaves the server ACTIVE on its source', async () => {
    // The fake driver takes about 5 s per live migration; a 2 s deadline aborts it.
    const file = planWith('os-deadline', (p) => {
      p.vms = ['s2'];
      p.migration = { ...p.migration, mode: 'live', completion_timeout_s_per_gib: 2 };
    });
    const r = await run(file);
    expect(r.exitCode, r.stdout + r.stderr).toBe(3);
    const s2 = reportOf('os-deadline').vms.find((v: { vm: string }) => v.vm === 's2');
    expect(s2.status).toBe('left');
    expect(s2.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['timeout']);
    expect((await where()).get('s2')).toEqual({ host: 'cmp1', status: 'ACTIVE' });
  }, 180_000);

  it('evacuates cmp1 to cmp2 and cmp3: every server where the plan said, the anti-affinity group kept, cmp1 left disabled with the reason', async () => {
    const planned = JSON.parse((await $`node dist/evacuator.js plan plans/openstack.yaml --json`).stdout);
    const r = await $`node dist/evacuator.js run plans/openstack.yaml --reports ${REPORTS}`.nothrow();
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const now = await where();
    const report = reportOf('openstack-cmp1');
    const onCmp1 = SERVERS.filter((s) => s.host === 'cmp1').map((s) => s.name);
    expect(report.vms.map((v: { vm: string }) => v.vm).sort()).toEqual(onCmp1);
    for (const m of planned.moves) {
      expect(now.get(m.vm)).toEqual({ host: m.destination, status: 'ACTIVE' });
      expect(report.vms.find((v: { vm: string }) => v.vm === m.vm).host).toBe(m.destination);
    }
    // s1 shares anti-affinity group ag with s5 on cmp2.
    expect(now.get('s1')!.host).toBe('cmp3');
    const svc = await service('cmp1');
    expect(svc.status).toBe('disabled');
    expect(svc.disabled_reason).toMatch(/^evacuator:.*"plan":"openstack-cmp1".*"role":"source"/);
    for (const h of ['cmp2', 'cmp3']) expect((await service(h)).status).toBe('enabled');
    // The destinations' leases (host aggregates) were lifted when the run ended.
    const aggregates = (await admin.request<{ aggregates: { name: string }[] }>('compute', 'GET', '/os-aggregates', { microversion: '2.84' })).body.aggregates;
    expect(aggregates.filter((a) => a.name.startsWith('evacuator-lease-'))).toEqual([]);
    expect(report.proofs).toEqual([{ host: 'cmp1', empty: true, left: [] }]);

    // clear lifts it.
    const cleared = await $`node dist/evacuator.js clear plans/openstack.yaml --reports ${REPORTS}`.nothrow();
    expect(cleared.stdout).toMatch(/cmp1: lifted the fence of plan 'openstack-cmp1'/);
    expect((await service('cmp1')).status).toBe('enabled');

    // The password is in no report, journal or log line.
    const password = secrets().admin;
    expect(r.stdout + r.stderr).not.toContain(password);
    for (const f of readdirSync(REPORTS)) expect(readFileSync(join(REPORTS, f), 'utf8'), f).not.toContain(password);
  }, 300_000);

  it('a cold migration (mode cold): migrate to the chosen host at 2.56+, confirm the resize, the server ACTIVE there', async () => {
    // s3 back to cmp1 (its fence lifted by clear above), cold.
    const from = (await where()).get('s3')!.host;
    const file = moveOne('os-cold', { vm: 's3', from, to: 'cmp1', mode: 'cold' });
    const r = await run(file);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const s3 = reportOf('os-cold').vms.find((v: { vm: string }) => v.vm === 's3');
    expect([s3.status, s3.method, s3.host]).toEqual(['moved', 'cold', 'cmp1']);
    expect((await where()).get('s3')).toEqual({ host: 'cmp1', status: 'ACTIVE' });
  }, 180_000);

  it('force-complete: a live migration still running after force_complete_after_s is forced to finish, Nova records it, the report says so', async () => {
    // s3 from cmp1 (the cold test put it there) to cmp2; unforced, the fake driver takes about 5 s.
    const file = moveOne('os-force', { vm: 's3', to: 'cmp2', mode: 'live' }, (p) => {
      p.fleet.openstack.force_complete_after_s = 1;
    });
    const r = await run(file);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const s3 = reportOf('os-force').vms.find((v: { vm: string }) => v.vm === 's3');
    expect(s3.attempts.map((a: { outcome: string; detail: string }) => [a.outcome, a.detail])).toEqual([['ok', expect.stringMatching(/^live migration done \(force-completed after \d+ s\)$/)]]);
    expect(await actions('s3')).toContain('live_migration_force_complete');
    expect((await where()).get('s3')).toEqual({ host: 'cmp2', status: 'ACTIVE' });
  }, 180_000);

  it('a live migration whose destination compute stopped after planning fails in the migration record; with the compute down that is a failed destination (unreachable, naming it), not an error; with no other destination the server stays ACTIVE on its source, reported with the reason (runs last: cmp1 stays down)', async () => {
    // s4 back to cmp1 (its fence lifted by clear above), whose compute then dies.
    const from = (await where()).get('s4')!.host;
    const file = moveOne('os-dest-down', { vm: 's4', from, to: 'cmp1', mode: 'live' });
    const journal = join(REPORTS, 'os-dest-down.journal.jsonl');
    const child = $`node dist/evacuator.js run ${file} --reports ${REPORTS}`.nothrow();
    // Planned and preflighted with cmp1 up; then its nova-compute dies.
    while (!(existsSync(journal) && readFileSync(journal, 'utf8').includes('"kind":"planned"'))) await sleep(50);
    stopCompute('cmp1');
    const r = await child;
    expect(r.exitCode, r.stdout + r.stderr).toBe(3);
    const s4 = reportOf('os-dest-down').vms.find((v: { vm: string }) => v.vm === 's4');
    expect(s4.status).toBe('left');
    expect(s4.attempts).toHaveLength(1);
    expect(s4.attempts[0].outcome).toBe('unreachable');
    expect(s4.attempts[0].detail).toMatch(/nova-compute on cmp1 is down/);
    expect((await where()).get('s4')).toEqual({ host: from, status: 'ACTIVE' });
  }, 300_000);

  it('two servers named alike (Nova allows it) are kept apart by id, across pages of 2 (max_limit): only the one the plan chose moves', async () => {
    const byName = async (path: string, key: string, name: string) => (await admin.request<Record<string, { id: string; name: string }[]>>(path.startsWith('/v2') ? 'image' : 'compute', 'GET', path)).body[key].find((x) => x.name === name)!.id;
    const flavor = await byName('/flavors', 'flavors', 'm1.test');
    const image = await byName('/v2/images', 'images', 'blank');
    const original = (await admin.list<{ id: string; name: string }>('compute', '/servers?all_tenants=1', 'servers', { microversion: '2.84', marker: (x) => x.id })).find((x) => x.name === 's5')!.id;
    const twin = (await admin.request<{ server: { id: string } }>('compute', 'POST', '/servers', {
      microversion: '2.74', body: { server: { name: 's5', imageRef: image, flavorRef: flavor, networks: 'none', host: 'cmp3' } },
    })).body.server.id;
    const server = async (id: string) => (await admin.request<{ server: { status: string; 'OS-EXT-SRV-ATTR:host': string } }>('compute', 'GET', `/servers/${id}`, { microversion: '2.84' })).body.server;
    while ((await server(twin)).status !== 'ACTIVE') await sleep(500);

    // Six servers, listed two a page; the twin on cmp3 moves to cmp2, where the original runs.
    const all = await admin.list<{ id: string; 'OS-EXT-SRV-ATTR:host': string }>('compute', '/servers/detail?all_tenants=1', 'servers', { microversion: '2.84', marker: (x) => x.id });
    expect(all).toHaveLength(SERVERS.length + 1);
    const twinName = `s5@${twin.slice(0, 8)}`;
    const file = moveOne('os-twins', { vm: twinName, from: 'cmp3', to: 'cmp2', mode: 'live' });
    const r = await run(file);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const report = reportOf('os-twins');
    expect(report.vms.map((v: { vm: string; status: string; host: string }) => [v.vm, v.status, v.host])).toEqual([[twinName, 'moved', 'cmp2']]);
    // The run saw every server (three pages), each once, the twins under their own names.
    const planned = readFileSync(join(REPORTS, 'os-twins.journal.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.kind === 'planned');
    const seen = planned.inventory.vms as { name: string; uuid: string }[];
    expect(seen.map((v) => v.uuid).sort()).toEqual(all.map((x) => x.id).sort());
    expect(seen.filter((v) => v.name.startsWith('s5')).map((v) => v.name).sort()).toEqual([`s5@${original.slice(0, 8)}`, twinName].sort());
    expect((await server(twin))['OS-EXT-SRV-ATTR:host']).toBe('cmp2');
    expect(await actions('s5', original)).toEqual(['create']);
    expect(await actions('s5', twin)).toEqual(['live-migration', 'create']);
  }, 180_000);
});
