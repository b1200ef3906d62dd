/**
 * The test cloud: a real Nova (api, conductor, scheduler) with keystone, placement, glance,
 * neutron-server, mariadb and rabbitmq from Debian's packages, all on 127.0.0.1, and three
 * nova-compute services on Nova's fake driver (cmp1..cmp3). `up` builds it and boots the test
 * servers; `down` stops every process it started and removes its folder; `status` lists them.
 * Facts this follows: ../shared/docs/openstack.md.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { $, sleep } from 'zx';
import { credentialsFor, OpenStack } from '../../scripts/fleet/openstack/client.ts';
import { DIR, PORTS, SMALL, computeConf, glanceConf, keystoneConf, neutronConf, novaConf, novaDbConf, paths, placementConf, spread, type Secrets, type Shape } from './config.ts';

$.verbose = false;
const PY = '/usr/bin/python3';
const RABBIT_BIN = '/usr/lib/rabbitmq/bin';
/** Debian's paste files, taken out of the service packages without installing them. */
const DEBS = '/var/cache/evacuator-cloud';
const PASTE = [
  { deb: 'nova-common', from: 'usr/share/nova-common/api-paste.ini', to: 'nova-api-paste.ini' },
  { deb: 'glance-common', from: 'usr/share/glance-common/glance-api-paste.ini', to: 'glance-api-paste.ini' },
  { deb: 'neutron-common', from: 'usr/share/neutron-common/api-paste.ini', to: 'neutron-api-paste.ini' },
];
const rabbitEnv = () => ({
  ...process.env,
  HOME: paths.rabbit,
  RABBITMQ_NODENAME: 'rabbit@localhost',
  RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
  RABBITMQ_NODE_PORT: String(PORTS.rabbit),
  RABBITMQ_DIST_PORT: String(PORTS.dist),
  ERL_EPMD_ADDRESS: '127.0.0.1',
  ERL_EPMD_PORT: String(PORTS.epmd),
  RABBITMQ_MNESIA_BASE: join(paths.rabbit, 'mnesia'),
  RABBITMQ_LOG_BASE: paths.logs,
  RABBITMQ_ENABLED_PLUGINS_FILE: join(paths.rabbit, 'enabled_plugins'),
  RABBITMQ_CONFIG_FILE: join(paths.rabbit, 'rabbitmq'),
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
});
/** A Python console script that only the service packages would install. */
const pyMain = (module: string, fn = 'main') => [PY, '-c', `import sys; from ${module} import ${fn}; sys.argv[0] = '${module}'; sys.exit(${fn}())`];

/** Start a long-running process in its own process group, output to logs/<name>.log, pid in pids/<name>. */
function start(name: string, argv: string[], env: NodeJS.ProcessEnv = process.env): void {
  const log = openSync(join(paths.logs, `${name}.out`), 'a');
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', log, log], env });
  child.unref();
  writeFileSync(join(paths.pids, name), String(child.pid));
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!(await ok().catch(() => false))) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`cloud up: ${what} not ready after ${timeoutMs / 1000} s (logs in ${paths.logs})`);
    await sleep(250);
  }
}

const answers = (port: number, path = '/') => async () => (await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) })).status < 500;

export function secrets(): Secrets {
  return JSON.parse(readFileSync(paths.secrets, 'utf8')) as Secrets;
}

/** The shape of the cloud that is up (the small one when it says nothing). */
export function shapeOf(): Shape {
  return existsSync(paths.shape) ? JSON.parse(readFileSync(paths.shape, 'utf8')) as Shape : SMALL;
}

export async function up(shape: Shape = SMALL): Promise<void> {
  const t0 = Date.now();
  const computes = shape.computes;
  await down();
  for (const d of [paths.etc, paths.logs, paths.state, paths.pids, paths.rabbit, join(paths.etc, 'keystone'), join(paths.etc, 'placement'), join(paths.state, 'images')]) mkdirSync(d, { recursive: true });
  const s: Secrets = { db: hex(), rabbit: hex(), admin: hex(), service: hex() };
  writeFileSync(paths.secrets, JSON.stringify(s), { mode: 0o600 });
  writeFileSync(paths.shape, JSON.stringify(shape));
  await pasteFiles();
  const etc = (f: string) => join(paths.etc, f);
  writeFileSync(etc('keystone/keystone.conf'), keystoneConf(s));
  writeFileSync(etc('placement/placement.conf'), placementConf(s));
  writeFileSync(etc('glance-api.conf'), glanceConf(s));
  writeFileSync(etc('neutron.conf'), neutronConf(s));
  writeFileSync(etc('nova.conf'), novaConf(s, shape.page));
  writeFileSync(etc('nova-db.conf'), novaDbConf(s));
  for (const c of computes) writeFileSync(etc(`${c}.conf`), computeConf(c, shape.scale));

  // 1. mariadb
  await $`mariadb-install-db --no-defaults --user=root --datadir=${paths.mysqlData} --auth-root-authentication-method=socket --skip-test-db`;
  start('mariadb', ['mariadbd', '--no-defaults', `--datadir=${paths.mysqlData}`, `--socket=${paths.mysqlSock}`, `--port=${PORTS.mysql}`, '--bind-address=127.0.0.1',
    '--user=root', `--pid-file=${join(DIR, 'mariadb.pid')}`, `--log-error=${join(paths.logs, 'mariadb.log')}`, '--max-connections=1000', '--innodb-buffer-pool-size=128M', '--skip-log-bin']);
  const sql = (q: string) => $`mariadb --no-defaults --socket=${paths.mysqlSock} -uroot -e ${q}`;
  await until('mariadb', async () => (await sql('SELECT 1').nothrow()).exitCode === 0, 60_000);
  const dbs = ['keystone', 'placement', 'glance', 'neutron', 'nova_api', 'nova', 'nova_cell0'];
  await sql(`${dbs.map((d) => `CREATE DATABASE ${d};`).join(' ')} CREATE USER 'os'@'127.0.0.1' IDENTIFIED BY '${s.db}'; GRANT ALL PRIVILEGES ON *.* TO 'os'@'127.0.0.1'; FLUSH PRIVILEGES;`);

  // 2. rabbitmq, loopback only
  writeFileSync(join(paths.rabbit, 'enabled_plugins'), '[].\n');
  writeFileSync(join(paths.rabbit, 'rabbitmq.conf'), `listeners.tcp.default = 127.0.0.1:${PORTS.rabbit}\nloopback_users = none\n`);
  // The scripts themselves: the /usr/sbin wrappers switch to the rabbitmq user and lose this environment.
  start('rabbitmq', [`${RABBIT_BIN}/rabbitmq-server`], rabbitEnv());
  const ctl = `${RABBIT_BIN}/rabbitmqctl`;
  await until('rabbitmq', async () => (await $({ env: rabbitEnv() })`${ctl} -n rabbit@localhost await_startup`.nothrow()).exitCode === 0, 90_000);
  await $({ env: rabbitEnv() })`${ctl} -n rabbit@localhost add_user openstack ${s.rabbit}`;
  await $({ env: rabbitEnv() })`${ctl} -n rabbit@localhost set_permissions -p / openstack ${['.*', '.*', '.*']}`;

  // 3. schemas, in parallel
  const k = ['--config-file', etc('keystone/keystone.conf')];
  const nova = ['--config-file', etc('nova.conf'), '--config-file', etc('nova-db.conf')];
  const base = `http://127.0.0.1:${PORTS.keystone}/v3/`;
  await Promise.all([
    (async () => {
      await $`keystone-manage ${k} db_sync`;
      await $`keystone-manage ${k} fernet_setup --keystone-user root --keystone-group root`;
      await $`keystone-manage ${k} credential_setup --keystone-user root --keystone-group root`;
      await $`keystone-manage ${k} bootstrap --bootstrap-password ${s.admin} --bootstrap-admin-url ${base} --bootstrap-internal-url ${base} --bootstrap-public-url ${base} --bootstrap-region-id RegionOne`;
    })(),
    $`placement-manage --config-file ${etc('placement/placement.conf')} db sync`,
    $`${pyMain('glance.cmd.manage')} --config-file ${etc('glance-api.conf')} db_sync`,
    $`${pyMain('neutron.db.migration.cli')} --config-file ${etc('neutron.conf')} upgrade heads`,
    (async () => {
      await $`${pyMain('nova.cmd.manage')} ${nova} api_db sync`;
      await $`${pyMain('nova.cmd.manage')} ${nova} cell_v2 map_cell0`;
      await $`${pyMain('nova.cmd.manage')} ${nova} cell_v2 create_cell --name cell1`;
      await $`${pyMain('nova.cmd.manage')} ${nova} db sync`;
    })(),
  ]);

  // 4. the API services
  const uwsgi = (name: string, port: number, script: string, env: string) => start(name, ['uwsgi', '--plugin', 'python3', '--http11-socket', `127.0.0.1:${port}`,
    '--wsgi-file', script, '--master', '--processes', '2', '--threads', '16', '--enable-threads', '--die-on-term', '--lazy-apps', '--env', env, '--logto', join(paths.logs, `${name}-uwsgi.log`)]);
  uwsgi('keystone', PORTS.keystone, '/usr/bin/keystone-wsgi-public', `OS_KEYSTONE_CONFIG_DIR=${join(paths.etc, 'keystone')}`);
  uwsgi('placement', PORTS.placement, '/usr/bin/placement-api', `OS_PLACEMENT_CONFIG_DIR=${join(paths.etc, 'placement')}`);
  start('glance-api', [...pyMain('glance.cmd.api'), '--config-file', etc('glance-api.conf')]);
  start('neutron-server', [...pyMain('neutron.cmd.eventlet.server'), '--config-file', etc('neutron.conf')]);
  startNovaApiProcess();
  await until('keystone', answers(PORTS.keystone, '/v3'));
  const creds = { authUrl: base, username: 'admin', password: s.admin, projectName: 'admin', userDomainName: 'Default', projectDomainName: 'Default', regionName: 'RegionOne' };
  await register(new OpenStack(creds), s);
  // A fresh token: its catalog now lists the endpoints just registered.
  const admin = new OpenStack(creds);
  writeFileSync(paths.clouds, stringify({
    clouds: {
      'evacuator-test': { auth: { auth_url: base, username: 'admin', password: s.admin, project_name: 'admin', user_domain_name: 'Default', project_domain_name: 'Default' }, region_name: 'RegionOne' },
    },
  }), { mode: 0o600 });
  await until('placement', answers(PORTS.placement));
  await until('glance', answers(PORTS.glance));
  await until('neutron', answers(PORTS.neutron));
  await until('nova-api', answers(PORTS.nova));
  // Neutron's start-up race: one list of networks before nova asks for ports.
  await until('neutron networks', async () => (await admin.request('network', 'GET', '/v2.0/networks')).status === 200);

  // 5. conductor, scheduler, computes
  start('nova-conductor', [...pyMain('nova.cmd.conductor'), ...nova, '--log-file', join(paths.logs, 'nova-conductor.log')]);
  start('nova-scheduler', [...pyMain('nova.cmd.scheduler'), ...nova, '--log-file', join(paths.logs, 'nova-scheduler.log')]);
  for (const c of computes) startComputeProcess(c);
  await until('nova-compute services', async () => {
    const r = await admin.request<{ services: { host: string; state: string }[] }>('compute', 'GET', '/os-services?binary=nova-compute', { microversion: '2.53' });
    return computes.every((c) => r.body.services.some((x) => x.host === c && x.state === 'up'));
  });
  await $`${pyMain('nova.cmd.manage')} ${nova} cell_v2 discover_hosts`;
  await until('hypervisors', async () => (await admin.list<{ id: string }>('compute', '/os-hypervisors', 'hypervisors', { microversion: '2.53', marker: (h) => h.id })).length === computes.length);
  const t1 = Date.now();
  if (shape.scale) await bootBatches(admin, shape);
  else await bootServers(admin);
  console.log(`cloud up: keystone, placement, glance, neutron, nova (api, conductor, scheduler), ${computes.join(', ')} on 127.0.0.1, ${shape.scale ? `${shape.servers} ` : ''}servers booted (${((Date.now() - t1) / 1000).toFixed(1)} s), in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`clouds.yaml: ${paths.clouds} (cloud evacuator-test); plan: plans/openstack.yaml`);
}

const hex = () => randomBytes(12).toString('hex');

async function pasteFiles(): Promise<void> {
  mkdirSync(DEBS, { recursive: true });
  for (const p of PASTE) {
    const dir = join(DEBS, p.deb);
    if (!existsSync(join(dir, p.from))) {
      const got = await $({ cwd: DEBS })`apt-get download ${p.deb}`.nothrow();
      const deb = readdirSync(DEBS).find((f) => f.startsWith(`${p.deb}_`) && f.endsWith('.deb'));
      if (!deb) throw new Error(`cloud up: cannot download ${p.deb} for its paste file: ${got.stderr}`);
      await $`dpkg-deb -x ${join(DEBS, deb)} ${dir}`;
    }
    copyFileSync(join(dir, p.from), join(paths.etc, p.to));
  }
}

/** Service users (admin in project service), services and endpoints. */
async function register(admin: OpenStack, s: Secrets): Promise<void> {
  const id = async (path: string, key: string, name: string) => (await admin.request<Record<string, { id: string; name: string }[]>>('identity', 'GET', `${path}?name=${name}`)).body[key][0]?.id;
  const project = (await admin.request<{ project: { id: string } }>('identity', 'POST', '/projects', { body: { project: { name: 'service', domain_id: 'default' } } })).body.project.id;
  const role = await id('/roles', 'roles', 'admin');
  for (const user of ['nova', 'placement', 'glance', 'neutron']) {
    const u = (await admin.request<{ user: { id: string } }>('identity', 'POST', '/users', { body: { user: { name: user, password: s.service, domain_id: 'default', default_project_id: project } } })).body.user.id;
    await admin.request('identity', 'PUT', `/projects/${project}/users/${u}/roles/${role}`);
  }
  const services = [
    { type: 'compute', name: 'nova', url: `http://127.0.0.1:${PORTS.nova}/v2.1` },
    { type: 'placement', name: 'placement', url: `http://127.0.0.1:${PORTS.placement}` },
    { type: 'image', name: 'glance', url: `http://127.0.0.1:${PORTS.glance}` },
    { type: 'network', name: 'neutron', url: `http://127.0.0.1:${PORTS.neutron}` },
  ];
  for (const svc of services) {
    const sid = (await admin.request<{ service: { id: string } }>('identity', 'POST', '/services', { body: { service: { type: svc.type, name: svc.name } } })).body.service.id;
    for (const iface of ['public', 'internal', 'admin']) {
      await admin.request('identity', 'POST', '/endpoints', { body: { endpoint: { service_id: sid, interface: iface, url: svc.url, region_id: 'RegionOne' } } });
    }
  }
}

/** The servers the tests evacuate: s1..s4 on cmp1 (s1 in anti-affinity group ag with s5 on cmp2). */
export const SERVERS = [
  { name: 's1', host: 'cmp1', group: 'ag' }, { name: 's2', host: 'cmp1' }, { name: 's3', host: 'cmp1' }, { name: 's4', host: 'cmp1' },
  { name: 's5', host: 'cmp2', group: 'ag' },
];

/** The flavor m1.test and the image blank every server boots from. */
async function flavorAndImage(admin: OpenStack): Promise<{ flavor: string; image: string }> {
  const flavor = (await admin.request<{ flavor: { id: string } }>('compute', 'POST', '/flavors', { body: { flavor: { name: 'm1.test', ram: 512, vcpus: 1, disk: 1 } } })).body.flavor.id;
  const image = (await admin.request<{ id: string }>('image', 'POST', '/v2/images', { body: { name: 'blank', disk_format: 'raw', container_format: 'bare', visibility: 'public' } })).body.id;
  await admin.request('image', 'PUT', `/v2/images/${image}/file`, { raw: Buffer.alloc(1024 * 1024) });
  return { flavor, image };
}

/**
 * A scale cloud's servers: the admin project's quotas lifted (instances 10, cores 20 and RAM
 * 50 GiB by default), then one POST per compute with min_count = max_count (Nova names them
 * on-cmpN-1, on-cmpN-2, ...), all ACTIVE. The fake driver holds no guests: a server costs Nova's
 * bookkeeping only.
 */
async function bootBatches(admin: OpenStack, shape: Shape): Promise<void> {
  const { flavor, image } = await flavorAndImage(admin);
  const project = (await admin.request<{ projects: { id: string }[] }>('identity', 'GET', '/projects?name=admin')).body.projects[0]!.id;
  await admin.request('compute', 'PUT', `/os-quota-sets/${project}`, { microversion: '2.84', body: { quota_set: { instances: -1, cores: -1, ram: -1, server_groups: -1, server_group_members: -1 } } });
  const counts = [...spread(shape)].filter(([, n]) => n > 0);
  for (const [host, n] of counts) {
    await admin.request('compute', 'POST', '/servers', {
      microversion: '2.74',
      body: { server: { name: `on-${host}`, imageRef: image, flavorRef: flavor, networks: 'none', host, min_count: n, max_count: n } },
    });
  }
  const total = counts.reduce((a, [, n]) => a + n, 0);
  await until(`${total} servers ACTIVE`, async () => {
    // A full listing is pages of shape.page: not four times a second.
    await sleep(3000);
    const all = await admin.list<{ id: string; status: string }>('compute', '/servers/detail?all_tenants=1', 'servers', { microversion: '2.84', marker: (x) => x.id });
    if (all.some((x) => x.status === 'ERROR')) throw new Error(`cloud up: a server went to ERROR (logs in ${paths.logs})`);
    return all.length === total && all.every((x) => x.status === 'ACTIVE');
  }, 600_000);
}

async function bootServers(admin: OpenStack): Promise<void> {
  const { flavor, image } = await flavorAndImage(admin);
  const group = (await admin.request<{ server_group: { id: string } }>('compute', 'POST', '/os-server-groups', { body: { server_group: { name: 'ag', policy: 'anti-affinity' } }, microversion: '2.64' })).body.server_group.id;
  const ids: string[] = [];
  for (const s of SERVERS) {
    const r = await admin.request<{ server: { id: string } }>('compute', 'POST', '/servers', {
      microversion: '2.74',
      body: { server: { name: s.name, imageRef: image, flavorRef: flavor, networks: 'none', host: s.host }, ...(s.group ? { 'os:scheduler_hints': { group } } : {}) },
    });
    ids.push(r.body.server.id);
  }
  await until('servers ACTIVE', async () => {
    const states = await Promise.all(ids.map(async (id) => (await admin.request<{ server: { status: string } }>('compute', 'GET', `/servers/${id}`)).body.server.status));
    if (states.includes('ERROR')) throw new Error(`cloud up: a server went to ERROR (logs in ${paths.logs})`);
    return states.every((x) => x === 'ACTIVE');
    // On a loaded 2-core machine the scheduler and computes take longer than the default bound (a CI run saw 120 s pass).
  }, 360_000);
}

function startNovaApiProcess(): void {
  const etc = (f: string) => join(paths.etc, f);
  start('nova-api', [...pyMain('nova.cmd.api'), '--config-file', etc('nova.conf'), '--config-file', etc('nova-db.conf'), '--log-file', join(paths.logs, 'nova-api.log')]);
}

/** Kill nova-api (its process group): Nova's API refuses connections (and drops those open) until startNovaApi. */
export function stopNovaApi(): void {
  process.kill(-Number(readFileSync(join(paths.pids, 'nova-api'), 'utf8')), 'SIGKILL');
}

/** Start nova-api again (if it is not running) and wait until it answers. */
export async function startNovaApi(): Promise<void> {
  const pid = Number(readFileSync(join(paths.pids, 'nova-api'), 'utf8'));
  if (!running(pid)) startNovaApiProcess();
  await until('nova-api', answers(PORTS.nova));
}

/** Freeze (SIGSTOP) or thaw (SIGCONT) nova-api: frozen, it accepts connections and answers none. */
export function freezeNovaApi(frozen: boolean): void {
  process.kill(-Number(readFileSync(join(paths.pids, 'nova-api'), 'utf8')), frozen ? 'SIGSTOP' : 'SIGCONT');
}

/** Stop one nova-compute (its process group), as a host failure would. */
export function stopCompute(host: string): void {
  const pid = Number(readFileSync(join(paths.pids, `nova-compute-${host}`), 'utf8'));
  process.kill(-pid, 'SIGKILL');
}

function startComputeProcess(host: string): void {
  start(`nova-compute-${host}`, [...pyMain('nova.cmd.compute'), '--config-file', join(paths.etc, 'nova.conf'), '--config-file', join(paths.etc, `${host}.conf`), '--log-file', join(paths.logs, `nova-compute-${host}.log`)]);
}

/** Start a nova-compute that stopCompute stopped (if it is not running) and wait until Nova sees it up. */
export async function startCompute(host: string): Promise<void> {
  const pidFile = join(paths.pids, `nova-compute-${host}`);
  if (!(existsSync(pidFile) && running(Number(readFileSync(pidFile, 'utf8'))))) startComputeProcess(host);
  const admin = new OpenStack(credentialsFor('evacuator-test', paths.clouds));
  await until(`nova-compute on ${host}`, async () => {
    const r = await admin.request<{ services: { host: string; state: string }[] }>('compute', 'GET', `/os-services?binary=nova-compute&host=${host}`, { microversion: '2.53' });
    return r.body.services[0]?.state === 'up';
  });
  await healServers(admin, host);
}

/**
 * Nova's fake driver keeps its guests in memory: a nova-compute started again knows none of the
 * servers Nova has on it, whose power state becomes NOSTATE (Nova then refuses to live-migrate
 * them). Rebuilding such a server (same image, same id and host) gives the driver its guest back.
 */
async function healServers(admin: OpenStack, host: string): Promise<void> {
  type S = { id: string; name: string; status: string; 'OS-EXT-SRV-ATTR:host': string; 'OS-EXT-STS:power_state': number; 'OS-EXT-STS:task_state': string | null; image: { id: string } };
  const lost = (await admin.list<S>('compute', '/servers/detail?all_tenants=1', 'servers', { microversion: '2.84', marker: (x) => x.id }))
    .filter((x) => x['OS-EXT-SRV-ATTR:host'] === host && x.status === 'ACTIVE' && x['OS-EXT-STS:power_state'] === 0 && !x['OS-EXT-STS:task_state']);
  for (const x of lost) await admin.request('compute', 'POST', `/servers/${x.id}/action`, { microversion: '2.84', body: { rebuild: { imageRef: x.image.id } } }).catch(() => undefined);
  // Best effort: a server not back in a minute is said, and the caller's own checks decide.
  await until('rebuilt servers ACTIVE', async () => {
    const now = await Promise.all(lost.map(async (x) => (await admin.request<{ server: S }>('compute', 'GET', `/servers/${x.id}`, { microversion: '2.84' })).body.server));
    return now.every((y) => y.status === 'ACTIVE' && y['OS-EXT-STS:power_state'] === 1 && !y['OS-EXT-STS:task_state']);
  }, 60_000).catch((e: unknown) => console.error(`test cloud: ${lost.map((x) => x.name).join(', ')} on ${host}: ${String(e)}`));
}

/** Alive and not a zombie (a killed compute nobody reaped). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Stop every process the cloud started (their process groups), then remove its folder. */
export async function down(): Promise<void> {
  if (existsSync(paths.pids)) {
    const pids = readdirSync(paths.pids).map((f) => Number(readFileSync(join(paths.pids, f), 'utf8')));
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      for (const pid of pids) {
        try {
          process.kill(-pid, sig);
        } catch { /* gone */ }
      }
      const t0 = Date.now();
      while (pids.some(alive) && Date.now() - t0 < 10_000) await sleep(200);
    }
  }
  // rabbitmq's Erlang port mapper daemonizes out of the process group.
  if (existsSync(paths.rabbit)) await $({ env: rabbitEnv() })`epmd -kill`.nothrow();
  rmSync(DIR, { recursive: true, force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function status(): Promise<void> {
  if (!existsSync(paths.pids)) {
    console.log('cloud: down');
    return;
  }
  for (const f of readdirSync(paths.pids).sort()) {
    const pid = Number(readFileSync(join(paths.pids, f), 'utf8'));
    console.log(`${f.padEnd(20)} pid ${String(pid).padEnd(8)} ${alive(pid) ? 'running' : 'gone'}`);
  }
}
