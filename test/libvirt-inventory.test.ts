/**
 * The libvirt inventory's batched read without a testbed: the real remote script (inventory.ts)
 * run by sh against a fake `virsh` on PATH that answers from files, so domains can vanish,
 * be renamed or carry hostile names between the list and their read.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { batchCommand, eachCommand, parseBatch, parseEach } from '../scripts/fleet/libvirt/inventory.ts';
import { separator } from '../scripts/fleet/libvirt/storage.ts';
import { tempDir } from './helpers.ts';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;');
const uuid = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

interface FakeDomain { uuid: string; name: string; state: number; disk?: string; capacity?: number; memKib?: number; saved?: boolean }

/** A fake virsh answering list, domstats, dumpxml, dominfo and domblkinfo from files under dir. */
function fakeHost(dir: string, domains: FakeDomain[], opts: { listed?: string[]; statsName?: (d: FakeDomain) => string; noStats?: boolean; listFails?: boolean } = {}) {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'xml'), { recursive: true });
  writeFileSync(join(dir, 'list'), (opts.listed ?? domains.map((d) => d.uuid)).join('\n') + '\n');
  writeFileSync(join(dir, 'saved'), domains.filter((d) => d.saved).map((d) => d.uuid).join('\n') + '\n');
  writeFileSync(join(dir, 'stats'), domains.map((d) => [`Domain: '${opts.statsName?.(d) ?? d.name}'`, `  state.state=${d.state}`, '  state.reason=1',
    ...(d.disk ? ['  block.count=1', '  block.0.name=vda', `  block.0.path=${d.disk}`, ...(d.capacity !== undefined ? [`  block.0.capacity=${d.capacity}`] : [])] : ['  block.count=0']), ''].join('\n')).join('\n'));
  for (const d of domains) {
    writeFileSync(join(dir, 'xml', d.uuid), `<domain type='qemu'>\n  <name>${esc(d.name)}</name>\n  <uuid>${d.uuid}</uuid>\n  <memory unit='KiB'>${d.memKib ?? 131072}</memory>\n  <vcpu placement='static' current='1'>2</vcpu>\n  <devices>\n${d.disk ? `    <disk type='file' device='disk'><source file='${esc(d.disk)}'/><target dev='vda'/></disk>\n` : ''}  </devices>\n</domain>\n`);
    writeFileSync(join(dir, 'xml', `${d.uuid}.info`), `Name:           ${d.name}\nUUID:           ${d.uuid}\nState:          ${['no state', 'running', 'blocked', 'paused', 'in shutdown', 'shut off'][d.state]}\nCPU(s):         1\nMax memory:     ${d.memKib ?? 131072} KiB\nManaged save:   ${d.saved ? 'yes' : 'no'}\n`);
    writeFileSync(join(dir, 'xml', `${d.uuid}.blk`), d.disk ? `Target     Capacity   Allocation   Physical\nvda        ${d.capacity ?? 1048576}    4096   4096\n` : '');
  }
  const virsh = join(dir, 'bin', 'virsh');
  writeFileSync(virsh, `#!/bin/sh
d=${JSON.stringify(dir)}
shift 2
case "$1" in
  list) case "$*" in *managed-save*) cat "$d/saved";; *) ${opts.listFails ? 'echo "error: failed to connect" >&2; exit 1' : 'cat "$d/list"'};; esac;;
  domstats) ${opts.noStats ? 'exit 1' : 'cat "$d/stats"'};;
  dumpxml) [ -f "$d/xml/$3" ] && cat "$d/xml/$3" || { echo "error: failed to get domain '$3'" >&2; exit 1; };;
  dominfo) [ -f "$d/xml/$3.info" ] && cat "$d/xml/$3.info" || exit 1;;
  domblkinfo) [ -f "$d/xml/$3.blk" ] && cat "$d/xml/$3.blk" || exit 1;;
esac
`);
  chmodSync(virsh, 0o755);
  const exec = (argv: string[]) => {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` } });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  return exec;
}

describe('the batched inventory of a host (real script, fake virsh)', () => {
  it('reads every domain in one command: names of any characters, states, managed saves, capacities, memory and vCPUs from the XML', () => {
    const dir = tempDir();
    const hostile = ["--all'; rm -rf / #", 'a b\tc', '$(reboot)', 'é漢 \u202e', "Domain: 'x'", 'q'.repeat(200)];
    const domains: FakeDomain[] = hostile.map((name, i) => ({ uuid: uuid(i + 1), name, state: i === 2 ? 5 : 1, disk: `/var/lib/libvirt/images/disk ${i} with space.qcow2`, capacity: (i + 1) * 2 ** 20, saved: i === 2 }));
    const exec = fakeHost(dir, domains);
    const sep = separator();
    const r = exec(batchCommand(sep));
    expect(r.code).toBe(0);
    const { read, again } = parseBatch(r.stdout, sep, 'hv1', 'Skylake');
    expect(again).toEqual([]);
    expect(read.map((x) => [x.vm.name, x.vm.uuid, x.vm.state, x.vm.resources])).toEqual(domains.map((d, i) => [
      d.name, d.uuid, i === 2 ? 'suspended' : 'running', { vcpu: 1, memory_mib: 128, disk_gib: (i + 1) / 1024 },
    ]));
    expect(read.map((x) => x.disks[0].path)).toEqual(domains.map((d) => d.disk));
  });

  it('a domain gone after the list is left out; one renamed or without stats or capacity is read again alone; the host is not failed', () => {
    const dir = tempDir();
    const domains: FakeDomain[] = [1, 2, 3, 4].map((i) => ({ uuid: uuid(i), name: `d${i}`, state: 1, disk: `/img/d${i}.qcow2`, capacity: 2 ** 20 }));
    domains[3].capacity = undefined;
    // d1 renamed between domstats and dumpxml; uuid(9) listed but gone.
    const exec = fakeHost(dir, domains, { listed: [...domains.map((d) => d.uuid), uuid(9)], statsName: (d) => (d.name === 'd1' ? 'd1-old' : d.name) });
    const sep = separator();
    const { read, again } = parseBatch(exec(batchCommand(sep)).stdout, sep, 'hv1', 'x');
    expect(read.map((x) => x.vm.name)).toEqual(['d2', 'd3']);
    expect(again).toEqual([uuid(1), uuid(4), uuid(9)]);
    const alone = parseEach(exec(eachCommand(sep, again)).stdout, sep, 'hv1', 'x');
    expect(alone.map((x) => [x.vm.name, x.vm.state, x.vm.resources.disk_gib])).toEqual([['d1', 'running', 1 / 1024], ['d4', 'running', 1 / 1024]]);
  });

  it('without domstats every domain is read alone; a domain with no definition but still there is busy (it stays, its host is not empty)', () => {
    const dir = tempDir();
    const domains: FakeDomain[] = [1, 2].map((i) => ({ uuid: uuid(i), name: `d${i}`, state: 1 }));
    const exec = fakeHost(dir, domains, { noStats: true });
    const sep = separator();
    const { read, again } = parseBatch(exec(batchCommand(sep)).stdout, sep, 'hv1', 'x');
    expect(read).toEqual([]);
    expect(again).toEqual([uuid(1), uuid(2)]);
    spawnSync('rm', [join(dir, 'xml', uuid(2))]);
    const alone = parseEach(exec(eachCommand(sep, again)).stdout, sep, 'hv1', 'x');
    expect(alone.map((x) => [x.vm.name, x.vm.state])).toEqual([['d1', 'running'], ['d2', 'busy']]);
  });

  it('a stats block shown twice under one name is given to no domain; a list that fails fails the host, never reads as empty', () => {
    const dir = tempDir();
    const domains: FakeDomain[] = [{ uuid: uuid(1), name: 'victim', state: 1 }, { uuid: uuid(2), name: 'other', state: 1 }];
    const exec = fakeHost(dir, domains, { statsName: () => 'victim' });
    const sep = separator();
    const { read, again } = parseBatch(exec(batchCommand(sep)).stdout, sep, 'hv1', 'x');
    expect(read).toEqual([]);
    expect(again.sort()).toEqual([uuid(1), uuid(2)]);
    const failing = fakeHost(tempDir(), domains, { listFails: true });
    const r = failing(batchCommand(sep));
    expect(r.code).toBe(3);
    expect(() => parseBatch(r.stdout, sep, 'hv1', 'x')).toThrow(/list is missing/);
  });

  it('a thousand domains in one answer', () => {
    const dir = tempDir();
    const domains: FakeDomain[] = Array.from({ length: 1000 }, (_, i) => ({ uuid: uuid(i + 1), name: `vm-${i}`, state: 1, disk: `/img/vm ${i}.qcow2`, capacity: 2 ** 30 }));
    const exec = fakeHost(dir, domains);
    const sep = separator();
    const r = exec(batchCommand(sep));
    const { read, again } = parseBatch(r.stdout, sep, 'hv1', 'x');
    expect(again).toEqual([]);
    expect(read).toHaveLength(1000);
    expect(read.every((x) => x.vm.resources.disk_gib === 1)).toBe(true);
  }, 60_000);
});
