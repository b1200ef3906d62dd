/**
 * A real libvirt fleet on one machine: N hosts (default 3), each with its own libvirtd, QEMU
 * (TCG) and sshd in its own network, mount and UTS namespaces, joined by a bridge; a tiny guest
 * image; a known_hosts file and a key for the controller; guests on hv1 (three by default). Needs root and
 * the Debian packages that .ci/run installs. `down` removes everything `up` made, also after a
 * failed run; `up` cleans up first.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { $, sleep } from 'zx';
import { buildGuest, domainXml, TINY_DISKS, tinyDisk, tinyDomainXml } from './guest.ts';
import { BRIDGE, CONTROLLER, DIR, hostAt, paths, PREFIX, type TestbedHost } from './layout.ts';

$.verbose = false;
const HERE = dirname(fileURLToPath(import.meta.url));
/** The guests `up` makes on hv1: g1, g2, ... with 128 MiB, every third 96 MiB. */
export function guests(count: number): { name: string; memoryMib: number }[] {
  return Array.from({ length: count }, (_, i) => ({ name: `g${i + 1}`, memoryMib: i % 3 === 2 ? 96 : 128 }));
}

/** The guests of a default `up`. */
export const GUESTS = guests(3);

export interface TestbedState {
  hosts: (TestbedHost & { anchor: number })[];
  controllerKey: string;
  knownHosts: string;
  sshConfig: string;
}

/** Run a command inside a host's namespaces (arguments quoted by zx). */
export function inHost(anchor: number, cmd: string[]) {
  // virsh without a URI probes several first (seconds per call).
  return $({ env: { ...process.env, LIBVIRT_DEFAULT_URI: 'qemu:///system' } })`nsenter -t ${anchor} -m -u -n -- ${cmd}`;
}

/** The density guests `up --guests G` makes on hv1: d1, d2, ... (see tinyDomainXml). */
export function tinyGuests(count: number, from = 1): string[] {
  return Array.from({ length: count }, (_, i) => `d${from + i}`);
}

/**
 * Bring the testbed up: n hosts, guestCount kernel guests (g1..) on hv1, and tiny density guests
 * (d1..) on hv1. Without tiny guests there are three kernel guests by default; with them, none.
 */
export async function up(n: number, guestCount?: number, tiny = 0): Promise<TestbedState> {
  if (process.getuid?.() !== 0) throw new Error('the testbed needs root (network namespaces, mounts); run it as root');
  await down();
  const t0 = Date.now();
  const hosts = Array.from({ length: n }, (_, i) => hostAt(i));
  await mkdir(paths.fleet, { recursive: true });
  await $`ssh-keygen -q -t ed25519 -N ${''} -C evtb-fleet -f ${join(paths.fleet, 'fleet_key')}`;
  await $`ssh-keygen -q -t ed25519 -N ${''} -C evtb-controller -f ${paths.controllerKey}`;
  await writeFile(paths.hosts, ['127.0.0.1 localhost', ...hosts.map((h) => `${h.address} ${h.name}`)].join('\n') + '\n');
  await writeFile(paths.knownHosts, '');

  // The datacenter network: a bridge in the root namespace, a veth pair per host.
  await $`ip link add ${BRIDGE} type bridge`;
  await $`ip addr add ${CONTROLLER}/24 dev ${BRIDGE}`;
  await $`ip link set ${BRIDGE} up`;
  for (const h of hosts) {
    await $`ip netns add ${h.netns}`;
    await $`ip link add ${h.veth} type veth peer name eth0 netns ${h.netns}`;
    await $`ip link set ${h.veth} master ${BRIDGE} up`;
    await $`ip -n ${h.netns} addr add ${h.address}/24 dev eth0`;
    await $`ip -n ${h.netns} link set eth0 up`;
    await $`ip -n ${h.netns} link set lo up`;
  }
  const guest = buildGuest();

  // The first host probes QEMU's capabilities; the others reuse its cache.
  const anchors = new Map<string, number>();
  for (const batch of [hosts.slice(0, 1), hosts.slice(1)]) {
    for (const h of batch) anchors.set(h.name, await startHost(h));
    for (const h of batch) await waitReady(h, anchors.get(h.name)!);
  }
  const keys = await Promise.all(hosts.map(async (h) => `${h.name},${h.address} ${(await readFile(join(h.dir, 'host_key.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ')}`));
  await writeFile(paths.knownHosts, keys.join('\n') + '\n');
  await writeFile(paths.sshConfig, hosts.map((h) => `Host ${h.name}\n  HostName ${h.address}\n`).join('') + `Host *\n  User root\n  IdentityFile ${paths.controllerKey}\n  UserKnownHostsFile ${paths.knownHosts}\n  StrictHostKeyChecking yes\n  ConnectTimeout 5\n  BatchMode yes\n`);

  await guest;
  const state: TestbedState = { hosts: hosts.map((h) => ({ ...h, anchor: anchors.get(h.name)! })), controllerKey: paths.controllerKey, knownHosts: paths.knownHosts, sshConfig: paths.sshConfig };
  await writeFile(paths.state, JSON.stringify(state, null, 2));
  const hv1 = state.hosts[0].anchor;
  const made = guests(guestCount ?? (tiny > 0 ? 0 : GUESTS.length));
  for (const g of made) {
    await inHost(hv1, ['virsh', '-q', 'vol-create-as', 'default', `${g.name}.qcow2`, '16M', '--format', 'qcow2']);
    // 1 MiB of a pattern of its own, so a checksum of the contents tells the disks (and a lost write) apart.
    await inHost(hv1, ['qemu-io', '-f', 'qcow2', '-c', `write -P ${made.indexOf(g) + 1} 0 1M`, `/var/lib/libvirt/images/${g.name}.qcow2`]);
    await writeFile(join(DIR, `${g.name}.xml`), domainXml(g.name, g.memoryMib));
    await inHost(hv1, ['virsh', '-q', 'define', join(DIR, `${g.name}.xml`)]);
    await inHost(hv1, ['virsh', '-q', 'start', g.name]);
  }
  if (tiny > 0) await addTinyGuests(state, 'hv1', tinyGuests(tiny));
  const names = [...made.map((g) => g.name), ...(tiny > 0 ? [tiny > 3 ? `d1..d${tiny}` : tinyGuests(tiny).join(', ')] : [])];
  console.log(`testbed up: ${n} hosts (${hosts.map((h) => `${h.name} ${h.address}`).join(', ')}), guests ${names.join(', ') || 'none'} on hv1, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`ssh -F ${paths.sshConfig} hv1 virsh list --all`);
  return state;
}

/** Define and start tiny density guests (tinyDomainXml) of these names on a host, in one command inside it. */
export async function addTinyGuests(state: TestbedState, host: string, names: string[]): Promise<void> {
  const h = state.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`no testbed host ${host}`);
  await mkdir(TINY_DISKS, { recursive: true });
  const disk = tinyDisk();
  for (const name of names) {
    await writeFile(join(TINY_DISKS, `${name}.img`), disk);
    await writeFile(join(TINY_DISKS, `${name}.xml`), tinyDomainXml(name));
  }
  await inHost(h.anchor, ['sh', '-c', 'd=$1; shift; for n do virsh -q define "$d/$n.xml" >/dev/null && virsh -q start --domain "$n" >/dev/null || exit 1; done', 'sh', TINY_DISKS, ...names]);
}

/** Start a host's anchor: a process in fresh namespaces that sets the host up and then sleeps. */
async function startHost(h: TestbedHost): Promise<number> {
  await mkdir(h.dir, { recursive: true });
  const log = openSync(join(h.dir, 'init.log'), 'a');
  const child = spawn('ip', ['netns', 'exec', h.netns, 'unshare', '--mount', '--uts', '--propagation', 'private', 'bash', join(HERE, 'host-init.sh'), h.name, h.address, h.dir, paths.fleet], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  if (!child.pid) throw new Error(`could not start host ${h.name}`);
  return child.pid;
}

async function waitReady(h: TestbedHost, anchor: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (existsSync(join(h.dir, 'ready'))) return;
    try {
      process.kill(anchor, 0);
    } catch {
      break;
    }
    await sleep(100);
  }
  const log = await readFile(join(h.dir, 'init.log'), 'utf8').catch(() => '');
  throw new Error(`host ${h.name} did not come up:\n${log.split('\n').slice(-15).join('\n')}`);
}

/** Remove every process, namespace, link and file the testbed made (whatever state it is in). */
export async function down(): Promise<string[]> {
  const removed: string[] = [];
  const namespaces = (await $`ip netns list`.nothrow()).stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`${PREFIX}-`));
  for (const ns of namespaces) {
    // Every process in the namespace: the anchor, sshd, libvirtd, QEMU.
    const pids = (await $`ip netns pids ${ns}`.nothrow()).stdout.split('\n').filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (pids.length > 0) removed.push(`${pids.length} processes in ${ns}`);
    await gone(pids);
    await $`ip netns delete ${ns}`.nothrow().quiet();
    removed.push(`namespace ${ns}`);
  }
  const links = (await $`ip -o link show`.nothrow()).stdout.split('\n').map((l) => l.split(': ')[1]?.split('@')[0]).filter((l) => l?.startsWith(PREFIX));
  for (const link of links) {
    // A host's veth goes with its namespace; what is left here is the bridge or a stray end.
    if ((await $`ip link delete ${link}`.nothrow().quiet()).exitCode === 0) removed.push(`link ${link}`);
  }
  if (existsSync(DIR)) {
    // The hosts' overlay and bind mounts live in their own mount namespaces and went with their
    // processes: only files remain.
    await rm(DIR, { recursive: true, force: true });
    removed.push(`folder ${DIR}`);
  }
  return removed;
}

/** Wait (at most 10 s) until these processes have exited. */
async function gone(pids: number[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const left = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    if (left.length === 0) return;
    await sleep(100);
  }
  throw new Error(`processes ${pids.join(', ')} did not exit after SIGKILL`);
}

export async function status(): Promise<string> {
  if (!existsSync(paths.state)) return 'testbed is down';
  const state = JSON.parse(await readFile(paths.state, 'utf8')) as TestbedState;
  const lines: string[] = [];
  for (const h of state.hosts) {
    let alive = true;
    try {
      process.kill(h.anchor, 0);
    } catch {
      alive = false;
    }
    const ssh = await $`ssh -F ${state.sshConfig} ${h.name} virsh -q list --all`.nothrow();
    const domains = ssh.exitCode === 0 ? ssh.stdout.trim().split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/).slice(1).join(' ')).join(', ') || 'no domains' : `ssh failed: ${ssh.stderr.trim()}`;
    lines.push(`${h.name} ${h.address} anchor ${h.anchor} ${alive ? 'alive' : 'DEAD'}: ${domains}`);
  }
  return lines.join('\n');
}
