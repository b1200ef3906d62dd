/**
 * split: read the fleet (read only, as `plan`), cut the plan's sources into shards with disjoint
 * destination pools (scripts/shard/), and write one normal plan per shard plus an index
 * (shards.json) a workflow builds its matrix from. Nothing is written unless every shard is made.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { commandLine, EvacError, ExitCode, userError } from '../errors.ts';
import { loadPlan } from '../plan/load.ts';
import { checkRules } from '../plan/rules.ts';
import { checkSchema } from '../plan/schema.ts';
import { settingsOf } from '../plan/settings.ts';
import { shardPlans } from '../shard/plans.ts';
import { splitFleet, splitInput, type Shard, type SplitBy } from '../shard/split.ts';
import { withDriver } from './commands.ts';
import { shown, shownDeep } from './shown.ts';

export interface SplitOptions {
  by?: string;
  shards?: string;
  out: string;
}

/** The index split writes beside the shard plans (shards.json). */
export interface ShardIndex {
  version: 1;
  plan: { name: string; file: string; digest: string };
  by: SplitBy;
  /** The simulated fleet's state file every shard shares, when the plan's fleet is simulated. */
  stateFile?: string;
  /** Each shard: its plan's name, file and sha256 digest, and what split made of it. */
  shards: (Shard & { name: string; file: string; digest: string })[];
}

export const INDEX_FILE = 'shards.json';
const GiB = 1024;

export async function splitCommand(file: string, opts: SplitOptions): Promise<number> {
  const by = splitBy(opts);
  const loaded = loadPlan(file);
  const plan = loaded.plan;
  if (plan.kind === 'rebalance') throw userError(`${file} is a rebalance: it has no sources to split`, [], 'split an evacuation plan (kind: evacuate)');
  const settings = settingsOf(plan);
  const inventory = await withDriver(loaded, { readOnly: true }, async (driver) => {
    const got = await driver.inventory();
    if (!got.ok) throw new EvacError(`cannot read the fleet: ${got.detail}`, 'fleet', [], 'check that the hosts answer, then run again');
    return got.inventory;
  });
  const shards = splitFleet(splitInput(plan, settings, inventory), by);
  const vmsOn = new Map<string, string[]>();
  for (const v of inventory.vms) vmsOn.set(v.host, [...vmsOn.get(v.host) ?? [], v.name]);
  // Shards of a simulated fleet share one state file, so each sees the others' fences and moves.
  const setState = plan.fleet.driver === 'sim' && !plan.fleet.sim?.state_file;
  const stateFile = plan.fleet.driver === 'sim' ? plan.fleet.sim?.state_file ?? join(opts.out, `${plan.name}.fleet.json`) : undefined;
  const plans = shardPlans(plan, shards, vmsOn, setState ? stateFile : undefined);
  // Every shard must load as a plan; one that does not is our bug, and nothing is written.
  for (const p of plans) {
    const problems = [...checkSchema(p).map((x) => `${x.path.join('.')}: ${x.message}`), ...checkRules(p).filter((r) => r.severity === 'error').map((r) => `${r.path.join('.')}: ${r.message}`)];
    if (problems.length > 0) throw new EvacError(`internal error: shard plan ${p.name} is not a valid plan: ${problems.join('; ')}`, 'internal');
  }
  // Each shard's file as it will be written: its digest goes into the index, so merge can tell a report of it from one of another split.
  const texts = plans.map((p, i) => {
    const s = shards[i];
    const where = s.key !== undefined && 'label' in by ? `, ${shown(by.label)}=${shown(s.key)}` : '';
    return `# Written by evacuator split from ${shown(file)} (plan ${plan.name}, ${loaded.digest.slice(0, 19)}…): shard ${s.index} of ${shards.length}${where}.
# Its sources and destinations are no other shard's. Run it like any plan: evacuator run ${shown(join(opts.out, `${p.name}.yaml`))}
${stringify(p, { lineWidth: 0 })}`;
  });
  const index: ShardIndex = {
    version: 1,
    plan: { name: plan.name, file, digest: loaded.digest },
    by,
    ...(stateFile !== undefined ? { stateFile } : {}),
    shards: shards.map((s, i) => ({ name: plans[i].name, file: join(opts.out, `${plans[i].name}.yaml`), digest: `sha256:${createHash('sha256').update(texts[i]).digest('hex')}`, ...s })),
  };
  mkdirSync(opts.out, { recursive: true });
  const indexFile = join(opts.out, INDEX_FILE);
  // Shard plans an earlier split wrote here that this one does not: removed, so no stale shard is run by mistake.
  const stale = earlierShards(indexFile).filter((f) => !index.shards.some((s) => s.file === f));
  for (const f of stale) rmSync(f, { force: true });
  index.shards.forEach((s, i) => writeFileSync(s.file, texts[i]));
  writeFileSync(indexFile, `${JSON.stringify(index, null, 2)}\n`);
  process.stdout.write(describeSplit(index, indexFile, setState));
  if (stale.length > 0) process.stdout.write(`Removed ${stale.length} shard plan(s) an earlier split wrote in ${shown(opts.out)}: ${stale.map((f) => shown(f)).join(', ')}\n`);
  return ExitCode.ok;
}

/** The shard plan files an earlier split's index in this folder lists (none when there is no readable index). */
function earlierShards(indexFile: string): string[] {
  try {
    const old = JSON.parse(readFileSync(indexFile, 'utf8')) as Partial<ShardIndex>;
    return Array.isArray(old.shards) ? old.shards.map((s) => s?.file).filter((f): f is string => typeof f === 'string' && dirname(f) === dirname(indexFile) && /-shard-\d+\.yaml$/.test(f)) : [];
  } catch {
    return [];
  }
}

function splitBy(opts: SplitOptions): SplitBy {
  if ((opts.by === undefined) === (opts.shards === undefined)) throw userError('give exactly one of --by LABEL and --shards N', [], 'for example: evacuator split PLAN --by rack, or evacuator split PLAN --shards 4');
  if (opts.by !== undefined) {
    if (opts.by === '') throw userError('--by needs a label key, for example --by rack');
    return { label: opts.by };
  }
  const n = Number(opts.shards);
  if (!/^\d+$/.test(opts.shards!) || !Number.isSafeInteger(n) || n < 1) throw userError(`--shards must be a whole number from 1 up (got '${opts.shards}')`);
  return { shards: n };
}

/** What was written: per shard its sources, destinations, and the memory to move against the room to take it. */
export function describeSplit(given: ShardIndex, givenFile: string, setState: boolean): string {
  // Every value made safe first (a label value may hold a line feed): the lines below are ours.
  const index = shownDeep(given);
  const indexFile = shown(givenFile);
  const shards = index.shards;
  const sources = shards.reduce((n, s) => n + s.sources.length, 0);
  const dests = shards.reduce((n, s) => n + s.destinations.length, 0);
  const how = 'label' in index.by ? `by label '${index.by.label}'` : `into ${index.by.shards} shards balanced by load`;
  const lines = [`Split plan ${index.plan.name} ${how}: ${shards.length} shard(s), ${sources} source(s), ${dests} destination(s). Index: ${indexFile}`];
  const gib = (mib: number) => (mib / GiB).toFixed(0);
  for (const s of shards) {
    lines.push(`  ${s.file}${s.key !== undefined ? ` (${s.key})` : ''}: ${s.sources.length} source(s), ${s.destinations.length} destination(s); moves ${gib(s.demandMib)} GiB of memory, room for ${gib(s.roomMib)} GiB`);
    lines.push(`    sources: ${brief(s.sources)}`);
    lines.push(`    destinations: ${brief(s.destinations)}`);
    if (s.roomMib < s.demandMib) lines.push(`    warning: its destinations can take less memory than its sources hold; some VMs will not be placed`);
  }
  if (index.stateFile !== undefined) {
    lines.push(setState
      ? `The simulated fleet is shared through ${index.stateFile} (the plan named no state_file): run the shards one after another on this machine, or each on its own copy of the fleet.`
      : `The simulated fleet is shared through the plan's state_file ${index.stateFile}.`);
  }
  const first = shards[0];
  lines.push(`Run each (${commandLine('evacuator', 'run', first.file)}, ...), then merge their reports: ${commandLine('evacuator', 'merge', '--index', indexFile)} reports/${first.name.replace(/-shard-\d+$/, '')}-shard-*.json`);
  return `${lines.join('\n')}\n`;
}

const brief = (xs: string[]) => (xs.length > 10 ? `${xs.slice(0, 10).join(', ')} and ${xs.length - 10} more` : xs.join(', '));
