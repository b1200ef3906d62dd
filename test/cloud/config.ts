/** The test cloud's configuration files, all bound to 127.0.0.1, under one folder. */
import { join } from 'node:path';

export const DIR = '/tmp/evacuator-cloud';
/** The API ports are the usual ones; the database and broker use their own, away from any system mariadb or rabbitmq. */
export const PORTS = { keystone: 5000, placement: 8778, glance: 9292, neutron: 9696, nova: 8774, mysql: 13306, rabbit: 15673, epmd: 14369, dist: 15674 };
/** How long a keystone token lasts in the test cloud (keystone's default, stated). */
export const TOKEN_LIFETIME_S = 3600;
/** Nova's page size in the test cloud ([api] max_limit). */
export const NOVA_PAGE = 2;
export const COMPUTES = ['cmp1', 'cmp2', 'cmp3'];

/**
 * The cloud's shape. The default is the small cloud the OpenStack tier's files share (three
 * computes, s1..s5, two items a page); `up --computes N --servers M [--page P]` builds a scale
 * cloud: N computes, M servers booted in batches (min_count/max_count, one POST per compute),
 * cmp1 and cmp2 holding 60+ each (about a third of M each) and the rest spread over cmp3..cmpN,
 * P items a page, and no limit on live migrations at once per compute.
 */
export interface Shape { computes: string[]; servers?: number; page: number; scale: boolean }
export const SMALL: Shape = { computes: COMPUTES, page: 2, scale: false };
export function scaleShape(computes: number, servers: number, page = 20): Shape {
  return { computes: Array.from({ length: computes }, (_, i) => `cmp${i + 1}`), servers, page, scale: true };
}

/** How many servers each compute gets in a scale cloud: cmp1 and cmp2 about a third each (60 at least), the rest evenly. */
export function spread(shape: Shape): Map<string, number> {
  const total = shape.servers ?? 0;
  const big = Math.min(Math.floor(total / 2), Math.max(60, Math.floor(total * 0.325)));
  const rest = shape.computes.slice(2);
  const left = total - 2 * big;
  const out = new Map<string, number>([['cmp1', big], ['cmp2', big]]);
  rest.forEach((c, i) => out.set(c, Math.floor(left / rest.length) + (i < left % rest.length ? 1 : 0)));
  return out;
}
export const paths = {
  etc: join(DIR, 'etc'),
  logs: join(DIR, 'logs'),
  state: join(DIR, 'state'),
  pids: join(DIR, 'pids'),
  mysqlData: join(DIR, 'mysql'),
  mysqlSock: join(DIR, 'mysql.sock'),
  rabbit: join(DIR, 'rabbit'),
  /** clouds.yaml for the admin and for evacuator (cloud name evacuator-test). */
  clouds: join(DIR, 'clouds.yaml'),
  secrets: join(DIR, 'secrets.json'),
  /** The cloud's Shape, written by up. */
  shape: join(DIR, 'shape.json'),
};

export interface Secrets {
  db: string;
  rabbit: string;
  admin: string;
  service: string;
}

/** A service user's password login in project service, as every [keystone_authtoken]-like section takes it. */
const serviceLogin = (s: Secrets, user: string) => `auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = ${user}
password = ${s.service}
`;

const authtoken = (s: Secrets, user: string) => `[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:${PORTS.keystone}/
auth_url = http://127.0.0.1:${PORTS.keystone}/
${serviceLogin(s, user)}`;

const serviceAuth = (s: Secrets, section: string, user: string) => `[${section}]
auth_url = http://127.0.0.1:${PORTS.keystone}/v3
region_name = RegionOne
${serviceLogin(s, user)}`;

const db = (s: Secrets, name: string) => `mysql+pymysql://os:${s.db}@127.0.0.1:${PORTS.mysql}/${name}`;
const rabbit = (s: Secrets) => `rabbit://openstack:${s.rabbit}@127.0.0.1:${PORTS.rabbit}/`;

export function keystoneConf(s: Secrets): string {
  return `[DEFAULT]
log_file = ${paths.logs}/keystone.log
[database]
connection = ${db(s, 'keystone')}
[token]
provider = fernet
expiration = ${TOKEN_LIFETIME_S}
[fernet_tokens]
key_repository = ${paths.state}/fernet-keys
[credential]
key_repository = ${paths.state}/credential-keys
`;
}

export function placementConf(s: Secrets): string {
  return `[DEFAULT]
log_file = ${paths.logs}/placement.log
[api]
auth_strategy = keystone
[placement_database]
connection = ${db(s, 'placement')}
${authtoken(s, 'placement')}`;
}

export function glanceConf(s: Secrets): string {
  return `[DEFAULT]
bind_host = 127.0.0.1
bind_port = ${PORTS.glance}
workers = 1
log_file = ${paths.logs}/glance-api.log
enabled_backends = fs:file
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = ${paths.state}/images
[database]
connection = ${db(s, 'glance')}
[paste_deploy]
flavor = keystone
config_file = ${paths.etc}/glance-api-paste.ini
${authtoken(s, 'glance')}`;
}

export function neutronConf(s: Secrets): string {
  return `[DEFAULT]
bind_host = 127.0.0.1
bind_port = ${PORTS.neutron}
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
transport_url = ${rabbit(s)}
api_workers = 1
rpc_workers = 1
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
api_paste_config = ${paths.etc}/neutron-api-paste.ini
state_path = ${paths.state}/neutron
log_file = ${paths.logs}/neutron-server.log
[database]
connection = ${db(s, 'neutron')}
[oslo_concurrency]
lock_path = ${paths.state}/neutron-lock
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers =
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
${authtoken(s, 'neutron')}`;
}

/** Shared by every nova service; the database sections are in novaDbConf, for api, conductor and scheduler only. */
export function novaConf(s: Secrets, page = NOVA_PAGE): string {
  return `[DEFAULT]
transport_url = ${rabbit(s)}
my_ip = 127.0.0.1
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = ${PORTS.nova}
osapi_compute_workers = 1
report_interval = 5
service_down_time = 20
# A compute that died answers no RPC: fail the call after 10 s, not the default 60.
rpc_response_timeout = 10
state_path = ${paths.state}/nova
[api]
auth_strategy = keystone
# Two items a page in the small cloud (the default is 1000), so that every listing the driver reads
# is paginated; more in a scale cloud (a listing of 200 servers would take 100 pages).
max_limit = ${page}
[wsgi]
api_paste_config = ${paths.etc}/nova-api-paste.ini
[oslo_concurrency]
lock_path = ${paths.state}/nova-lock
[scheduler]
discover_hosts_in_cells_interval = -1
[oslo_messaging_notifications]
driver = noop
[vnc]
enabled = false
[glance]
api_servers = http://127.0.0.1:${PORTS.glance}
[conductor]
workers = 1
[filter_scheduler]
track_instance_changes = false
${authtoken(s, 'nova')}
${serviceAuth(s, 'placement', 'placement')}
${serviceAuth(s, 'neutron', 'neutron')}`;
}

export function novaDbConf(s: Secrets): string {
  return `[api_database]
connection = ${db(s, 'nova_api')}
[database]
connection = ${db(s, 'nova')}
`;
}

export function computeConf(host: string, scale = false): string {
  return `[DEFAULT]
host = ${host}
compute_driver = fake.FakeLiveMigrateDriver
state_path = ${paths.state}/${host}
${scale ? '# A scale cloud: the plan bounds live migrations at once, not Nova (its default is 1 per compute).\nmax_concurrent_live_migrations = 0\n' : ''}`;
}
