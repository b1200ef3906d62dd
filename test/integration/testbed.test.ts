/**
 * The testbed itself, through its command: hosts that are really separate (own hostname, own
 * libvirtd with its own host UUID, own sshd behind strict host-key checking), a real live
 * migration between them that keeps the guest running, and a `down` that leaves nothing behind.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $, sleep } from 'zx';
import { DIR, paths, PREFIX } from '../testbed/layout.ts';
import { lastTick, ssh, testbed } from './helpers.ts';

describe('the libvirt testbed', () => {
  beforeAll(async () => {
    const out = await testbed('up', '3');
    expect(out.stdout).toMatch(/testbed up: 3 hosts/);
  });
  afterAll(async () => {
    await testbed('down').nothrow();
  });

  it('has three separate hosts reachable over SSH with strict host-key checking', async () => {
    const uuids = new Set<string>();
    for (const h of ['hv1', 'hv2', 'hv3']) {
      expect((await ssh(h, 'hostname')).stdout.trim()).toBe(h);
      expect((await ssh(h, 'virsh', 'hostname')).stdout.trim()).toBe(h);
      const caps = (await ssh(h, 'virsh', 'capabilities')).stdout;
      uuids.add(/<uuid>([^<]+)<\/uuid>/.exec(caps)![1]);
    }
    expect(uuids.size).toBe(3);
    const status = (await testbed('status')).stdout;
    expect(status).toMatch(/hv1 .* alive: g1 running, g2 running, g3 running/);
    expect(status).toMatch(/hv2 .* alive: no domains/);
  });

  it('refuses a host key that does not match known_hosts', async () => {
    // hv2's key presented under hv1's name: a man in the middle, as ssh sees it.
    const r = await $`ssh -F ${paths.sshConfig} -o HostName=10.251.7.12 -o HostKeyAlias=hv1 hv1 true`.nothrow();
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('live-migrates a guest peer to peer with its disk, and the guest keeps running', async () => {
    await sleep(2000);
    const before = await lastTick('hv1', 'g1');
    expect(before).toBeGreaterThan(0);
    await ssh('hv1', 'virsh', 'migrate', '--live', '--persistent', '--undefinesource', '--p2p', '--copy-storage-all', 'g1', 'qemu+ssh://hv2/system');
    expect((await ssh('hv2', 'virsh', 'domstate', 'g1')).stdout.trim()).toBe('running');
    expect((await ssh('hv1', 'virsh', 'list', '--all', '--name')).stdout).not.toMatch(/\bg1\b/);
    await sleep(2000);
    expect(await lastTick('hv2', 'g1')).toBeGreaterThan(before);
  });

  it('down removes every process, namespace, link and file it made', async () => {
    await testbed('down');
    expect((await $`ip netns list`).stdout).not.toContain(`${PREFIX}-`);
    expect((await $`ip -o link show`).stdout).not.toContain(PREFIX);
    expect(existsSync(DIR)).toBe(false);
    expect((await $`pgrep -f ${'libvirtd --daemon --config /etc/libvirt/libvirtd.conf'}`.nothrow()).stdout.trim()).toBe('');
  });
});
