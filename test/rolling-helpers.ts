/** What the rolling tests share: a generated cluster's rolling plan, a small pinned-VM roll, a roll run until signalled, and what a roll left (moves from the waves' journals, the simulated fleet). */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readState } from '../scripts/fleet/sim/state.ts';
import type { EvacuationPlan } from '../scripts/plan/plan-types.ts';
import { readRollJournal } from '../scripts/rolling/roll.ts';
import { readJournal } from '../scripts/runner/journal.ts';
import { planFile } from './helpers.ts';

export function cluster(hosts: number, vms: number, groups: number, seed: number, rolling: Record<string, unknown> = {}): EvacuationPlan {
  return {
    version: 1, name: 'roll', kind: 'rolling',
    fleet: { driver: 'sim', sim: { seed, generate: { hosts, vms, anti_affinity_groups: groups } } },
    rolling: { selector: {}, failure_domain: 'rack', maintenance: { simulate: { duration_s: 600, hypervisor_version: '9.9.0' } }, checks: { hypervisor_version: '9.9.0' }, ...rolling },
    placement: { max_utilization: 0.9 },
    migration: { mode: 'live', concurrency: { total: 8, per_source: 2, per_destination: 2 } },
  } as EvacuationPlan;
}

/** Every live migration the waves' journals say ended well, per VM (the driver-level record, not the roll's report). */
export function movesByVm(reports: string): Map<string, number> {
  const out = new Map<string, number>();
  const root = join(reports, 'roll.roll');
  if (!existsSync(root)) return out;
  for (const w of readdirSync(root)) {
    const j = join(root, w, 'roll.journal.jsonl');
    if (!existsSync(j)) continue;
    for (const l of readJournal(j)) if (l.kind === 'move-end' && l.outcome === 'ok') out.set(l.vm, (out.get(l.vm) ?? 0) + 1);
  }
  return out;
}

/** The simulated fleet as the roll left it: each VM's host, each host's version and fence. */
export function fleetAfter(reports: string) {
  const { saved } = readState(join(reports, 'roll.fleet.json'));
  return saved;
}

const smallHost = (name: string, rack: string) => ({ name, vcpu: 16, memory_mib: 32768, disk_gib: 200, labels: { rack } });
/** A VM of the small pinned roll. */
export const smallVm = (name: string, on: string, extra: Record<string, unknown> = {}) => ({ name, host: on, vcpu: 2, memory_mib: 2048, ...extra });

/** Three hosts in three racks, p1 pinned on h1 (shutdown-restart), a state file in dir; rolling merged over the defaults. */
export function pinnedRoll(dir: string, rolling: Record<string, unknown>, vms = [smallVm('p1', 'h1'), smallVm('v1', 'h1'), smallVm('v2', 'h2'), smallVm('v3', 'h3')]): string {
  return planFile({
    version: 1, name: 'roll', kind: 'rolling',
    fleet: { driver: 'sim', sim: { state_file: join(dir, 'fleet.json'), hosts: [smallHost('h1', 'r1'), smallHost('h2', 'r2'), smallHost('h3', 'r3')], vms } },
    sources: ['h1', 'h2', 'h3'],
    rolling: { wave: 1, order: 'listed', pinned: 'shutdown-restart', checks: { timeout_s: 60, interval_s: 1 }, ...rolling },
    placement: { pinned: ['p1'] },
  }, dir);
}

/** The roll's own journal in reports (empty before it is written). */
export const rollLines = (reports: string) => (existsSync(join(reports, 'roll.roll.jsonl')) ? readRollJournal(join(reports, 'roll.roll.jsonl')) : []);

/** evacuator run, sent these signals 150 ms apart once ready() (polled every 50 ms, 20 s at most); its exit code and output. */
export async function runUntil(file: string, reports: string, ready: () => boolean, signals: NodeJS.Signals[]): Promise<{ code: number | null; out: string }> {
  const proc = spawn('node', ['dist/evacuator.js', 'run', file, '--reports', reports], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  for (let i = 0; i < 400 && !ready(); i++) await new Promise((r) => setTimeout(r, 50));
  for (const sig of signals) {
    proc.kill(sig);
    await new Promise((r) => setTimeout(r, 150));
  }
  return { code: await exited, out };
}
