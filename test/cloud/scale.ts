/**
 * An evacuation of a scale cloud (npm run cloud -- up --computes N --servers M), in-process so
 * that the driver's request counts can be read: evacuate() with an OpenStackDriver this module
 * opens (listing or per-server polling), then Nova's own record of each migration. Shared by the
 * OpenStack tier's scale test (test/openstack/scale/) and npm run bench:openstack.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parse, stringify } from 'yaml';
import { credentialsFor, OpenStack } from '../../scripts/fleet/openstack/client.ts';
import { MICROVERSION, OpenStackDriver, type Polling } from '../../scripts/fleet/openstack/driver.ts';
import { loadPlan } from '../../scripts/plan/load.ts';
import type { Report } from '../../scripts/report/build.ts';
import { evacuate } from '../../scripts/runner/evacuate.ts';
import { paths } from './config.ts';

export interface NovaServer { id: string; name: string; status: string; 'OS-EXT-SRV-ATTR:host': string; 'OS-EXT-STS:task_state': string | null }

export const admin = () => new OpenStack(credentialsFor('evacuator-test', paths.clouds), { requestsPerSecond: 1000 });

/** Every server, paged. */
export const servers = (os: OpenStack) => os.list<NovaServer>('compute', '/servers/detail?all_tenants=1', 'servers', { microversion: MICROVERSION, marker: (x) => x.id });

export interface ScaleRun {
  exitCode: number;
  report: Report;
  journal: string;
  /** Wall time of evacuate(), s (discovery, placement, preflight, migrations, proof, reports). */
  wallS: number;
  /** The migrations' makespan (first start to last end), s. */
  migrationsS: number;
  moved: number;
  requests: ReturnType<OpenStackDriver['requests']>;
  /** Per moved server: evacuator's time for its migration (its attempt, request to settled), s. */
  durationsS: number[];
  /** Per moved server: Nova's own, its live-migration record's updated_at - created_at, s. */
  novaS: number[];
}

export interface ScaleOptions {
  name: string;
  sources: string[];
  destinations: string[];
  polling: Polling;
  /** Live migrations at once per source (total: that times the sources). */
  perSource: number;
  requestsPerSecond?: number;
}

/** Evacuate the sources live onto the destinations, in this process; the plan is written under the cloud's state folder. */
export async function evacuateAtScale(o: ScaleOptions): Promise<ScaleRun> {
  const reportsDir = join(paths.state, 'scale-reports');
  mkdirSync(reportsDir, { recursive: true });
  const plan = parse(readFileSync('plans/openstack.yaml', 'utf8'));
  plan.name = o.name;
  plan.sources = o.sources;
  plan.destinations = { hosts: o.destinations };
  plan.migration = { mode: 'live', concurrency: { total: o.perSource * o.sources.length, per_source: o.perSource, per_destination: o.perSource * 2 } };
  if (o.requestsPerSecond) plan.fleet.openstack.requests_per_second = o.requestsPerSecond;
  const file = join(paths.state, `${o.name}.yaml`);
  writeFileSync(file, stringify(plan));
  const loaded = loadPlan(file);
  const driver = new OpenStackDriver(loaded.plan.fleet.openstack!, undefined, { polling: o.polling });
  const os = admin();
  const novaStart = new Date(Date.now() - 5000).toISOString().replace(/\.\d+Z$/, 'Z');
  const t0 = performance.now();
  const done = await evacuate(loaded, driver, () => {}, { reportsDir });
  const wallS = (performance.now() - t0) / 1000;
  const moved = done.report.vms.filter((v) => v.status === 'moved');
  const uuids = new Map((await servers(os)).map((s) => [s.name, s.id]));
  const ids = new Set(moved.map((v) => uuids.get(v.vm)));
  type M = { uuid: string; instance_uuid: string; status: string; created_at: string; updated_at: string };
  const migrations = await os.list<M>('compute', `/os-migrations?migration_type=live-migration&changes-since=${novaStart}`, 'migrations', { microversion: MICROVERSION, marker: (m) => m.uuid });
  const at = (t: string) => Date.parse(/Z$/.test(t) ? t : `${t}Z`);
  const novaS = migrations.filter((m) => ids.has(m.instance_uuid) && m.status === 'completed').map((m) => (at(m.updated_at) - at(m.created_at)) / 1000);
  const attempts = moved.map((v) => v.attempts.at(-1)!);
  const starts = attempts.map((a) => a.startS);
  const ends = attempts.map((a) => a.endS);
  return {
    exitCode: done.exitCode, report: done.report, journal: done.paths.journal, wallS,
    migrationsS: moved.length ? Math.max(...ends) - Math.min(...starts) : 0,
    moved: moved.length, requests: driver.requests(), durationsS: attempts.map((a) => a.durationS), novaS,
  };
}

export const mean = (xs: number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN);
export const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : NaN);

/** One line of figures for a run. */
export function summary(r: ScaleRun): string {
  const reads = Object.entries(r.requests.routes).filter(([k]) => k.startsWith('GET')).reduce((s, [, n]) => s + n, 0);
  return [
    `${r.moved} moved, exit ${r.exitCode}; wall ${r.wallS.toFixed(1)} s (${(r.wallS / Math.max(1, r.moved)).toFixed(2)} s per migration), migrations makespan ${r.migrationsS.toFixed(1)} s (${(r.migrationsS / Math.max(1, r.moved)).toFixed(2)} s per migration)`,
    `API calls ${r.requests.total} (${(r.requests.total / Math.max(1, r.moved)).toFixed(2)} per migration; reads ${reads}, ${(reads / Math.max(1, r.moved)).toFixed(2)} per migration), ${r.requests.polls} polls, ${(r.requests.waitedMs / 1000).toFixed(1)} s waited for the budget`,
    `per migration: evacuator ${mean(r.durationsS).toFixed(2)} s mean / ${median(r.durationsS).toFixed(2)} s median; Nova's own (record updated_at - created_at) ${mean(r.novaS).toFixed(2)} s mean / ${median(r.novaS).toFixed(2)} s median over ${r.novaS.length}`,
  ].join('\n  ');
}
