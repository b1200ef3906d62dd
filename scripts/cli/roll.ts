/** plan and run for a rolling plan (kind: rolling): the waves it would take, and the roll itself. */
import { ExitCode, userError } from '../errors.ts';
import type { EventSink } from '../events.ts';
import { openDriver } from '../fleet/open.ts';
import { guardDriver } from '../fleet/guard.ts';
import { guardLimits } from '../runner/evacuate.ts';
import { limitOn, resolveLimits } from '../runner/limits.ts';
import type { LoadedPlan } from '../plan/load.ts';
import { estimateSeconds } from '../preflight/blueprint.ts';
import { settingsOf } from '../plan/settings.ts';
import { interrupts } from '../process.ts';
import { planRoll, roll, rollingOf, waveShortfall } from '../rolling/roll.ts';
import { consoleOptions, consoleSink, eventStream, paint } from './console.ts';
import { finishRollInActions, groupSink, inActions } from './github.ts';
import { shownDeep, shownLines } from './shown.ts';

const GiB = 2 ** 30;

/** plan: the waves, the moves of each, how many land on hosts not yet maintained, and an estimate of each wave's time. */
export async function rollPlanCommand(loaded: LoadedPlan, opts: { json?: boolean; out?: string }): Promise<number> {
  if (opts.out) throw userError('--out saves an evacuation blueprint; a rolling plan places each wave on the fleet as it is then', [], 'use plan --json to keep the waves');
  const plan = loaded.plan;
  const r = rollingOf(plan);
  const settings = settingsOf(plan);
  const driver = guardDriver(await openDriver(plan, { readOnly: true }), guardLimits(settingsOf(plan)));
  const got = await driver.inventory().finally(() => driver.close());
  if (!got.ok) throw userError(`cannot read the fleet: ${got.detail}`, [], 'check that the hosts answer');
  const inv = got.inventory;
  const rp = planRoll(plan, inv);
  const byName = new Map(inv.vms.map((v) => [v.name, v]));
  const stepS = r.maintenance?.simulate?.duration_s;
  const waves = rp.waves.map((w, i) => {
    const est = w.moves.map((m) => estimateSeconds(byName.get(m.vm)!, settings, { sources: inv.hosts, ...(driver.setupS !== undefined ? { setupS: driver.setupS } : {}), ...(driver.streamMibps !== undefined ? { streamMibps: driver.streamMibps } : {}), ...(driver.perHostMigrations !== undefined ? { perHostMigrations: driver.perHostMigrations } : {}) }) ?? 0);
    const lim = resolveLimits(settings.concurrency, { sources: inv.hosts.filter((h) => w.hosts.includes(h.name)), destinations: inv.hosts.filter((h) => !w.hosts.includes(h.name)) }, driver, settings.bandwidthMibps);
    const parallel = Math.min(lim.total, w.hosts.reduce((a, h) => a + limitOn(lim.perSource, h), 0));
    const evacS = est.length === 0 ? 0 : Math.max(Math.max(...est), est.reduce((a, b) => a + b, 0) / Math.max(1, parallel));
    const restarts = w.hosts.flatMap((h) => rp.restarted[h] ?? []);
    return { wave: i + 1, hosts: w.hosts, moves: w.moves.length, ...(w.returns.length > 0 ? { returns: w.returns.length } : {}), ...(restarts.length > 0 ? { pinnedRestarted: restarts } : {}), landOnNotMaintained: w.moves.filter((m) => !m.final).length, estimatedEvacuationS: Math.round(evacS), ...(stepS !== undefined ? { estimatedMaintenanceS: stepS } : {}), notes: w.notes };
  });
  const out = { plan: plan.name, wave: r.wave, waves, blocked: rp.blocked, skipped: rp.skipped, moves: rp.moves, movedAgain: rp.again, vmsMoved: rp.vmsMoved, moveBackBaseline: 2 * rp.vmsMoved };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    const c = paint(consoleOptions(process.stdout).color);
    const s = shownDeep(out);
    const lines = [c.bold(`Roll ${s.plan}: ${waves.length} waves (wave: ${r.wave}), ${rp.moves} moves for ${rp.vmsMoved} VMs (${rp.again} of them a second move); evacuate-then-move-back: ${2 * rp.vmsMoved}`)];
    for (const w of s.waves) {
      lines.push(`  wave ${w.wave}: ${w.hosts.join(', ')}: ${w.moves} moves${w.landOnNotMaintained ? ` (${w.landOnNotMaintained} onto hosts not yet maintained)` : ''}${w.returns ? `, then ${w.returns} back to their hosts` : ''}${w.pinnedRestarted ? `; pinned ${w.pinnedRestarted.join(', ')} shut down and started again in place` : ''}, about ${w.estimatedEvacuationS} s to empty${w.estimatedMaintenanceS !== undefined ? ` + ${w.estimatedMaintenanceS} s maintenance` : ''}`);
      for (const n of w.notes.slice(0, 5)) lines.push(c.dim(`      ${n}`));
      if (w.notes.length > 5) lines.push(c.dim(`      … ${w.notes.length - 5} more`));
    }
    for (const b of s.blocked) lines.push(c.red(`  ${b.host} cannot be emptied: ${b.why}`));
    for (const k of s.skipped) lines.push(c.yellow(`  ${k.host} is skipped: ${k.why}`));
    const short = waveShortfall(rp, r.wave);
    if (short) lines.push(c.red(`  ${shownDeep(short)}; run refuses it: use wave: auto or a smaller wave`));
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return rp.blocked.length > 0 || rp.skipped.length > 0 || waveShortfall(rp, r.wave) ? ExitCode.incomplete : ExitCode.ok;
}

/** run on a rolling plan: the roll with the console, CI groups and signals wired. */
/** The run options a roll takes (the CLI's run options; --blueprint is refused). */
export interface RollRunOptions { reports: string; resume?: boolean; acceptChangedPlan?: boolean; events?: string; blueprint?: string }

export async function rollRunCommand(loaded: LoadedPlan, opts: RollRunOptions): Promise<number> {
  if (opts.blueprint) throw userError('--blueprint applies to an evacuation plan, not a rolling one', [], 'run the rolling plan without --blueprint: each wave is placed on the fleet as it is then');
  // With the events on stdout, the lines for people go to stderr, so stdout stays JSON lines.
  const out = opts.events === '-' ? process.stderr : process.stdout;
  const sink = consoleSink(consoleOptions(out));
  const stream = opts.events ? eventStream(opts.events) : undefined;
  const groups = inActions() ? groupSink(out) : undefined;
  const emit: EventSink = (e) => {
    stream?.(e);
    groups?.(e);
    sink(e);
  };
  const { stop, halt, release } = interrupts((message) => emit({ kind: 'warning', t: 0, message }), {
    first: 'the roll stops after the steps in flight (no new wave, no new migration); resume it with --resume',
    second: 'cancelling live migrations in flight (their guests stay on their sources)',
  });
  try {
    const done = await roll(loaded, (o) => openDriver(loaded.plan, o), emit, { reportsDir: opts.reports, ...(opts.resume ? { resume: true } : {}), ...(opts.acceptChangedPlan ? { acceptChangedPlan: true } : {}), stop, halt });
    sink.close();
    if (groups) {
      groups.close();
      finishRollInActions(out, done.report);
    }
    const t = done.report.totals;
    const col = paint(consoleOptions(out).color);
    out.write(`\n${col.bold(`${t.maintained} of ${t.hosts} hosts maintained${t.failed + t.skipped + t.blocked > 0 ? ` (${t.failed} failed, ${t.skipped} skipped, ${t.blocked} could not be emptied)` : ''}; ${t.migrations} migrations for ${t.vmsMoved} VMs, ${(t.bytes / GiB).toFixed(1)} GiB (evacuate-then-move-back: ${t.moveBack.migrations} migrations, ${(t.moveBack.bytes / GiB).toFixed(1)} GiB).`)}\n`);
    out.write(shownLines(`Reports: ${done.paths.json ?? done.paths.journal}\n`));
    return done.exitCode;
  } finally {
    release();
  }
}
