/**
 * Holding hosts: a run fences its sources (nothing may place VMs on a host being drained; the
 * fence stays through the maintenance until `evacuator clear`) and leases its destinations (no
 * second run may fill them at the same time; lifted when the run ends). A host another plan holds
 * is refused with that plan's name, before anything is touched.
 */
import { EvacError } from '../errors.ts';
import type { Driver } from '../fleet/driver.ts';
import { describeFence, type Fence, type Host } from '../fleet/types.ts';
import { controller, stillRunning } from './journal.ts';

export interface Holder {
  plan: string;
  run: string;
  controller: string;
  pid: number;
  /** When that process started (tells a reused pid apart). */
  pidStart?: string;
}

const held = (host: string, f: Fence, what: string) => new EvacError(
  `${host} ${what} is held by ${describeFence(f)}`, 'held', [],
  f.controller === controller() && !stillRunning({ ...f, ended: false })
    ? `that run is over (pid ${f.pid} no longer runs it) but did not finish: resume it (evacuator run <the file of plan '${f.plan}'> --resume), or lift its hold with \`evacuator clear <the file of plan '${f.plan}'>\``
    : f.controller !== controller()
      ? `wait for that run to end; it runs from ${f.controller}, so evacuator cannot tell whether it is over: if it is, resume it or lift its hold there with \`evacuator clear <the file of plan '${f.plan}'>\``
      : `wait for that run to end (pid ${f.pid} runs it), or stop it (kill -INT ${f.pid}) and resume it`,
);

/**
 * Leases on these hosts left by runs that are over: taken by a process of this controller that
 * no longer runs (a run that could not lift its lease at its end, a host silent then). Lifted at
 * this contact, each said; the hosts' fences are updated in place. A lease from another
 * controller, or from a process still alive, stays (checkHolds refuses it, naming it).
 */
/** Runs of this process that hold hosts now (several evacuations may share a process). */
const running = new Set<string>();

/** This process's run holds hosts from now until release(). */
export function holding(run: string): () => void {
  running.add(run);
  return () => running.delete(run);
}

export async function liftStaleLeases(driver: Driver, hosts: Host[], say: (message: string) => void): Promise<void> {
  for (const h of hosts) {
    const f = h.fence;
    if (!f || f.role !== 'destination' || f.controller !== controller()) continue;
    if (f.pid === process.pid ? running.has(f.run) : stillRunning({ ...f, ended: false })) continue;
    const got = await driver.fence(h.name, null, true);
    if (got.ok) {
      say(`${h.name} was still leased by ${describeFence(f)}, a run that is over (pid ${f.pid} no longer runs it): lease lifted`);
      delete h.fence;
    }
  }
}

/** Refuse before touching anything when another plan holds one of our sources or is filling one of our destinations. */
export function checkHolds(plan: string, sources: Host[], destinations: Host[]): void {
  for (const h of sources) if (h.fence && h.fence.plan !== plan) throw held(h.name, h.fence, '(a source of this plan)');
  for (const h of destinations) {
    if (h.fence && h.fence.plan !== plan && h.fence.role === 'destination') throw held(h.name, h.fence, '(a destination of this plan)');
  }
}

/** Fence the sources and lease the destinations; on a refusal, give back what was taken and name the holder. */
export async function takeHosts(driver: Driver, who: Holder, sources: string[], destinations: string[]): Promise<void> {
  const since = new Date().toISOString();
  const taken: string[] = [];
  const take = async (host: string, role: Fence['role']) => {
    const got = await driver.fence(host, { ...who, role, since });
    if (got.ok) taken.push(host);
    return { host, got };
  };
  const answers = await Promise.all([...sources.map((h) => take(h, 'source')), ...destinations.map((h) => take(h, 'destination'))]);
  const refused = answers.find((a) => !a.got.ok);
  if (!refused || refused.got.ok) return;
  await Promise.all(taken.map((h) => driver.fence(h, null)));
  const fail = refused.got;
  if (fail.holder) throw held(refused.host, fail.holder, '');
  throw new EvacError(`cannot mark ${refused.host}: ${fail.detail}`, 'fleet', [], 'check that the host answers, then run again');
}

/** Lift this run's leases on its destinations (the sources stay fenced for the maintenance); returns those that could not be lifted, with why. */
export async function releaseDestinations(driver: Driver, destinations: string[]): Promise<{ host: string; detail: string }[]> {
  const answers = await Promise.all(destinations.map(async (host) => ({ host, got: await driver.fence(host, null) })));
  return answers.flatMap(({ host, got }) => (got.ok ? [] : [{ host, detail: got.detail }]));
}
