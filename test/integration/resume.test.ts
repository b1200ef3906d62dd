/**
 * Killing evacuator with SIGKILL on the real testbed, then resuming: once while a live migration
 * runs (the job goes on inside libvirtd; the resume waits for it and finds the guest on its
 * destination), once while a cold migration copies its disk (the resume rolls it back: the copy
 * on the destination is deleted, the guest started again on its source, then moved again).
 * Afterwards every guest runs on exactly one host, its disk has the checksum it had, and hv1 is
 * proven empty. A second plan touching hv1 is refused while the first one holds it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { $, quote, sleep } from 'zx';
import { DIR } from '../testbed/layout.ts';
import { GUESTS } from '../testbed/testbed.ts';
import { chainOf, readJournal, type Line } from '../../scripts/runner/journal.ts';
import { lastTick, planWith, reportOf, run, ssh, testbed, useTestbed } from './helpers.ts';

const REPORTS = `${DIR}/reports`;
const journalOf = (name: string) => `${REPORTS}/${name}.journal.jsonl`;

/** Start a run, wait until the journal shows `until`, wait `after` ms more, then SIGKILL it. */
async function killDuring(file: string, name: string, until: (l: Line) => boolean, after: number) {
  const child = $`node dist/evacuator.js run ${file} --reports ${REPORTS}`.nothrow();
  let exited = false;
  void child.then(() => (exited = true));
  while (!exited && !(existsSync(journalOf(name)) && readJournal(journalOf(name)).some(until))) await sleep(50);
  await sleep(after);
  void child.kill('SIGKILL');
  const out = await child;
  expect(out.signal, `the run ended before the kill: ${out.stdout}`).toBe('SIGKILL');
}

/** sha256 of a guest disk's contents (what the guest reads; a live storage copy may lay the qcow2 file out differently). */
async function contentSum(host: string, guest: string): Promise<string> {
  const file = `/var/lib/libvirt/images/${guest}.qcow2`;
  const raw = `/run/${guest}.raw`;
  return (await ssh(host, `qemu-img convert -U -f qcow2 -O raw ${file} ${raw} && sha256sum ${raw} && rm -f ${raw}`)).stdout.split(' ')[0];
}

/** Every testbed guest: on exactly one host, running, its disk's contents unchanged. */
async function everyGuestOnce(sums: Map<string, string>) {
  const where = new Map<string, string[]>();
  for (const h of ['hv1', 'hv2', 'hv3']) {
    for (const g of (await ssh(h, 'virsh', 'list', '--all', '--name')).stdout.split('\n').filter(Boolean)) where.set(g, [...where.get(g) ?? [], h]);
  }
  for (const g of GUESTS) {
    const hosts = where.get(g.name) ?? [];
    expect(hosts, `${g.name} runs on exactly one host`).toHaveLength(1);
    const [host] = hosts;
    expect((await ssh(host, 'virsh', 'domstate', g.name)).stdout.trim()).toBe('running');
    expect(await contentSum(host, g.name), `${g.name}'s disk`).toBe(sums.get(g.name));
  }
  return where;
}

async function checksums() {
  const sums = new Map<string, string>();
  for (const g of GUESTS) sums.set(g.name, await contentSum('hv1', g.name));
  // Three different disks: the pattern each got at testbed up.
  expect(new Set(sums.values()).size).toBe(GUESTS.length);
  return sums;
}

describe('SIGKILL and resume on the testbed', () => {
  useTestbed();

  it('killed during a live migration: the resume finds the guest where the job left it and finishes the evacuation', async () => {
    const sums = await checksums();
    // 10 MiB/s: each guest's migration takes seconds, long enough to be killed in the middle of one.
    const file = planWith('kill-live', (plan) => {
      plan.migration = { ...plan.migration, bandwidth_mibps: 10, concurrency: { total: 1, per_source: 1, per_destination: 1 } };
    });
    await killDuring(file, 'kill-live', (l) => l.kind === 'progress' && l.progress.phase === 'memory', 1000);
    const inFlight = chainOf(readJournal(journalOf('kill-live')))!.inFlight;
    expect(inFlight.map((f) => [f.vm.name, f.method])).toEqual([['g1', 'live']]);

    // The plan's hosts are held: another plan draining hv1 is refused, naming this one.
    const other = planWith('kill-live-other', () => {});
    const refused = await run(other);
    expect(refused.exitCode, refused.stderr).toBe(5);
    expect(refused.stderr).toMatch(/hv1 \(a source of this plan\) is held by plan 'kill-live'/);

    const before = await lastTick('hv1', 'g2');
    const resumed = await $`node dist/evacuator.js run ${file} --reports ${REPORTS} --resume`.nothrow();
    expect(resumed.exitCode, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/g1 recovered \(live hv1 → hv\d was in flight\): the migration had finished/);
    const where = await everyGuestOnce(sums);
    expect(where.get('g1')).not.toEqual(['hv1']);
    // g2 was not rebooted by the move: its counter went on.
    expect(await lastTick(where.get('g2')![0], 'g2')).toBeGreaterThan(before);
    const report = reportOf('kill-live');
    expect(report.proofs).toEqual([{ host: 'hv1', empty: true, left: [] }]);
    expect(report.vms.map((v: { vm: string; status: string }) => [v.vm, v.status])).toEqual([['g1', 'moved'], ['g2', 'moved'], ['g3', 'moved']]);
    expect((await ssh('hv1', 'ls', '/var/lib/libvirt/images')).stdout.trim()).toBe('');
  }, 180_000);

  it('killed during a cold migration\'s disk copy: the resume rolls it back, then moves it again with its disk intact', async () => {
    await testbed('up', '3');
    const sums = await checksums();
    // 0.1 MiB/s: scp copies each 1.2 MiB disk file in about 12 s.
    const file = planWith('kill-cold', (plan) => {
      plan.migration = { ...plan.migration, mode: 'cold', bandwidth_mibps: 0.1, concurrency: { total: 1, per_source: 1, per_destination: 1 }, cold: { allow: ['*'], shutdown_timeout_s: 60 } };
    });
    const fileSum = (await ssh('hv1', 'sha256sum', '/var/lib/libvirt/images/g1.qcow2')).stdout.split(' ')[0];
    await killDuring(file, 'kill-cold', (l) => l.kind === 'progress' && l.progress.phase === 'copy', 2000);
    const [f] = chainOf(readJournal(journalOf('kill-cold')))!.inFlight;
    expect([f.vm.name, f.method]).toEqual(['g1', 'cold']);
    // Killed mid-copy: shut off on its source, part of its disk on the destination.
    expect((await ssh('hv1', 'virsh', 'domstate', 'g1')).stdout.trim()).toBe('shut off');

    // The copy the killed run started goes on: nothing tells scp on hv1 that its controller died.
    const copying = () => ssh('hv1', `pgrep -f -- ${quote('^scp .*g1\\.qcow2')}`).nothrow();
    expect((await copying()).exitCode, 'an orphaned scp on hv1').toBe(0);

    const resuming = $`node dist/evacuator.js run ${file} --reports ${REPORTS} --resume`.nothrow();
    while (!readJournal(journalOf('kill-cold')).some((l) => l.kind === 'recovered')) await sleep(50);
    expect((await copying()).exitCode, 'the recovery stopped the orphaned scp').toBe(1);
    const resumed = await resuming;
    expect(resumed.exitCode, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/g1 recovered \(cold hv1 → hv\d was in flight\): rolled back: the copy still running on hv1 stopped, any partial copy on hv\d deleted, started again on hv1/);
    const where = await everyGuestOnce(sums);
    // The cold copy is the file itself, byte for byte.
    expect((await ssh(where.get('g1')![0], 'sha256sum', '/var/lib/libvirt/images/g1.qcow2')).stdout.split(' ')[0]).toBe(fileSum);
    const g1 = reportOf('kill-cold').vms.find((v: { vm: string }) => v.vm === 'g1');
    expect(g1.status).toBe('moved');
    expect(g1.attempts.map((a: { method: string; outcome: string }) => [a.method, a.outcome])).toEqual([['cold', 'aborted'], ['cold', 'ok']]);
    expect(reportOf('kill-cold').proofs).toEqual([{ host: 'hv1', empty: true, left: [] }]);
    // Nothing left behind on the host it did not end on.
    for (const h of ['hv2', 'hv3']) {
      const images = (await ssh(h, 'ls', '/var/lib/libvirt/images')).stdout.split('\n').filter(Boolean);
      const domains = (await ssh(h, 'virsh', 'list', '--all', '--name')).stdout.split('\n').filter(Boolean);
      expect(images.sort()).toEqual(domains.map((d) => `${d}.qcow2`).sort());
    }
    expect(readFileSync(journalOf('kill-cold'), 'utf8')).not.toMatch(/password|BEGIN OPENSSH/);
  }, 240_000);
});
