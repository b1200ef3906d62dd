/**
 * A destination's lease: a Nova host aggregate named `evacuator-lease-<host>` holding the fence in
 * its metadata, with the host in it. Nova keeps aggregate names unique, so creating it is the
 * atomic step: a 409 means another run holds it (its metadata names the holder). Unlike a
 * disabled compute service, an aggregate does not stop Nova from accepting migrations to the
 * host: it has no availability zone, and its metadata keys (evacuator_*) are none that a
 * scheduler filter or placement prefilter reads (filter_tenant_id*, trait:*, availability_zone,
 * or a flavor's aggregate_instance_extra_specs). Lifting removes the host and deletes it.
 */
import type { Fence } from '../types.ts';
import { HttpError } from './client.ts';
import type { Written } from './write.ts';

export const LEASE_PREFIX = 'evacuator-lease-';
const FIELDS = ['plan', 'run', 'role', 'controller', 'pid', 'since'] as const;
/** Kept when the fence has it: when the holding process started (tells a reused pid apart). */
const OPTIONAL = ['pidStart'] as const;
const key = (f: string) => `evacuator_${f}`;
/** Nova's limit on an aggregate's name and on each metadata value. */
const MAX = 255;

export interface Aggregate { id: number; name: string; hosts: string[] | null; metadata: Record<string, string> | null }

export const leaseName = (host: string) => `${LEASE_PREFIX}${host}`;

/** The fence an aggregate holds, if it is a whole lease. */
export function leaseOf(a: Aggregate): Fence | undefined {
  const m = a.metadata ?? {};
  if (!a.name.startsWith(LEASE_PREFIX) || FIELDS.some((f) => typeof m[key(f)] !== 'string')) return undefined;
  const pid = Number(m[key('pid')]);
  const role = m[key('role')] === 'source' ? 'source' : 'destination';
  const pidStart = m[key('pidStart')];
  return { plan: m[key('plan')]!, run: m[key('run')]!, role, controller: m[key('controller')]!, pid, ...(pidStart ? { pidStart } : {}), since: m[key('since')]! };
}

/** Leases by host: each lease aggregate's holder, for the hosts in it. */
export function leasesByHost(aggregates: Aggregate[]): Map<string, Fence> {
  const by = new Map<string, Fence>();
  for (const a of aggregates) {
    const f = leaseOf(a);
    const host = a.name.slice(LEASE_PREFIX.length);
    if (f && a.hosts?.includes(host)) by.set(host, f);
  }
  return by;
}

export const sameHolder = (a: Fence | undefined, b: Fence) => a !== undefined && [...FIELDS, ...OPTIONAL].every((f) => String(a[f] ?? '') === String(b[f] ?? ''));

/** What the lease calls need from the driver: reads, and writes decided from state (write.ts). */
export interface LeaseNova {
  aggregates(): Promise<Aggregate[]>;
  write<T>(what: string, method: string, path: string, body: unknown, taken: () => Promise<boolean>): Promise<Written<T>>;
}

export type LeaseAnswer = { ok: true } | { ok: false; reason: 'refused' | 'unreachable' | 'error'; detail: string; holder?: Fence };

const status = (w: Written<unknown>) => (!w.ok && w.error instanceof HttpError ? w.error.status : undefined);
const failed = (w: Written<unknown> & { ok: false }): LeaseAnswer => ({ ok: false, reason: status(w) === undefined || status(w)! >= 500 ? 'unreachable' : 'error', detail: w.detail });

/** Take (or renew, or with force take over) host's lease for fence. */
export async function takeLease(nova: LeaseNova, host: string, fence: Fence, force: boolean): Promise<LeaseAnswer> {
  const name = leaseName(host);
  if (name.length > MAX) return { ok: false, reason: 'error', detail: `the host name is too long for a lease aggregate's name (${MAX} characters)` };
  // Every field, a missing optional one as null (which removes a previous holder's).
  const metadata: Record<string, string | null> = Object.fromEntries([...FIELDS.map((f) => [key(f), String(fence[f])]), ...OPTIONAL.map((f) => [key(f), fence[f] ?? null])]);
  const long = Object.entries(metadata).find(([, v]) => v !== null && v.length > MAX);
  if (long) return { ok: false, reason: 'error', detail: `the lease's ${long[0]} is longer than Nova keeps (${MAX} characters)` };
  const find = async () => (await nova.aggregates()).find((a) => a.name === name);

  let agg = await find();
  let ours = false;
  if (!agg) {
    const made = await nova.write<{ aggregate: Aggregate }>(`creating aggregate ${name}`, 'POST', '/os-aggregates', { aggregate: { name } }, async () => (await find()) !== undefined);
    if (made.ok) {
      ours = true;
      agg = made.answer?.aggregate ?? await find();
    } else if (status(made) === 409) {
      agg = await find(); // another run made it first
    } else {
      return failed(made);
    }
    if (!agg) return { ok: false, reason: 'unreachable', detail: `aggregate ${name} was made but cannot be read back` };
  }
  const holder = leaseOf(agg);
  if (!ours && !(holder && holder.plan === fence.plan) && !force) {
    return holder
      ? { ok: false, reason: 'refused', detail: `${host} is leased by another plan`, holder }
      : { ok: false, reason: 'refused', detail: `${host}'s lease aggregate ${name} is being taken by another run, or was left half-made (no holder in its metadata): \`evacuator clear --force\` of a plan with this host lifts it` };
  }
  const id = agg.id;
  const set = await nova.write(`writing the lease on ${name}`, 'POST', `/os-aggregates/${id}/action`, { set_metadata: { metadata } },
    async () => sameHolder(leaseOf((await find()) ?? agg), fence));
  if (!set.ok) return failed(set);
  if (!agg.hosts?.includes(host)) {
    const added = await nova.write(`adding ${host} to ${name}`, 'POST', `/os-aggregates/${id}/action`, { add_host: { host } },
      async () => (await find())?.hosts?.includes(host) === true);
    // 409: the host is in it already.
    if (!added.ok && status(added) !== 409) return failed(added);
  }
  // Two runs that both lost the answer to their create may both be here: the metadata read back says who holds it.
  const now = await find();
  const held = now && leaseOf(now);
  if (!sameHolder(held, fence)) return held ? { ok: false, reason: 'refused', detail: `${host} is leased by another plan`, holder: held } : { ok: false, reason: 'error', detail: `${name} lost its lease metadata` };
  return { ok: true };
}

/** Remove host from its lease aggregate and delete the aggregate; ok when there is none. */
export async function liftLease(nova: LeaseNova, host: string): Promise<LeaseAnswer> {
  const name = leaseName(host);
  const find = async () => (await nova.aggregates()).find((a) => a.name === name);
  const agg = await find();
  if (!agg) return { ok: true };
  if (agg.hosts?.includes(host)) {
    const removed = await nova.write(`removing ${host} from ${name}`, 'POST', `/os-aggregates/${agg.id}/action`, { remove_host: { host } },
      async () => !((await find())?.hosts?.includes(host) ?? false));
    if (!removed.ok && status(removed) !== 404) return failed(removed);
  }
  const gone = await nova.write(`deleting aggregate ${name}`, 'DELETE', `/os-aggregates/${agg.id}`, undefined, async () => (await find()) === undefined);
  if (!gone.ok && status(gone) !== 404) return failed(gone);
  return { ok: true };
}
