/**
 * GitHub Actions (GITHUB_ACTIONS=true): each stage of the run is a ::group:: of the log, each VM
 * left in place or not placeable becomes an annotation (::error:: when a migration of it failed or
 * it is left on a source, ::warning:: otherwise), and a markdown summary is appended to
 * $GITHUB_STEP_SUMMARY. Every value from the plan or the fleet is escaped for where it goes.
 */
import { appendFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { EvacEvent } from '../events.ts';
import type { Report, ReportVm } from '../report/build.ts';
import type { RollReport } from '../rolling/report.ts';
import { duration } from '../report/html.ts';
import { shown, shownLines } from './shown.ts';

export const inActions = (env: NodeJS.ProcessEnv = process.env) => env.GITHUB_ACTIONS === 'true';

/** Workflow-command escaping: the message, and (stricter) a property such as title. */
const data = (s: string) => shownLines(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const property = (s: string) => data(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

/** Opens a ::group:: per stage (closing the one before); close() ends the last. */
export function groupSink(out: Writable) {
  let open = false;
  const close = () => {
    if (open) out.write('::endgroup::\n');
    open = false;
  };
  const sink = (e: EvacEvent) => {
    if (e.kind !== 'stage') return;
    close();
    out.write(`::group::${data(`${e.stage}${e.detail ? `: ${e.detail}` : ''}`)}\n`);
    open = true;
  };
  return Object.assign(sink, { close });
}

/** One annotation per VM that did not move, and per source host that is not empty. */
export function annotations(r: Report): string[] {
  const lines: string[] = [];
  for (const v of r.vms) {
    if (v.status === 'moved') continue;
    if (v.status === 'pinned') {
      // The plan's own choice: a notice, not a warning.
      lines.push(`::notice title=${property(`${v.vm} pinned on ${v.host ?? v.source}`)}::${data(v.reason)}`);
      continue;
    }
    const failed = v.attempts.some((a) => a.outcome !== 'ok');
    const level = v.status === 'left' && failed ? 'error' : 'warning';
    const title = v.status === 'unplaced' ? `${v.vm} cannot be placed` : `${v.vm} left on ${v.host ?? v.source}`;
    lines.push(`::${level} title=${property(title)}::${data(v.reason)}`);
  }
  for (const p of r.proofs.filter((x) => !x.empty)) {
    lines.push(`::error title=${property(`${p.host} is not empty`)}::${data(p.left.map((l) => `${l.vm} (${l.state}): ${l.why}`).join('\n'))}`);
  }
  return lines;
}

/**
 * Markdown table cell: no HTML, no pipe, one line (CR and LF folded), no control character, and
 * every markdown punctuation a name could use for a link, an image, emphasis or code escaped;
 * ':', '.' and '@' too, so that GitHub's autolinks (`https://…`, `www.…`, `a@b.c`) never form
 * from a name: an escaped character ends the text a renderer looks for a link in.
 */
const cell = (v: unknown) => shown(String(v).replace(/\s*[\r\n]+\s*/g, ' '))
  .replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!)
  .replace(/[\\`*_[\]!|~:.@]/g, (c) => `\\${c}`);

export function stepSummary(r: Report, paths: { json: string; html: string }): string {
  const t = r.totals;
  const empty = t.sourcesEmpty === t.sources;
  const verdict = r.result === 'interrupted'
    ? `⏸️ Interrupted: ${t.sourcesEmpty} of ${t.sources} source hosts empty`
    : empty ? (r.proofs.some((p) => p.scoped) ? `✅ None of the ${t.sources} source hosts holds a VM of this plan` : `✅ All ${t.sources} source hosts are empty`) : `❌ ${t.sources - t.sourcesEmpty} of ${t.sources} source hosts are not empty`;
  const out = [
    `## ${r.shards ? `Region ${cell(r.plan.name)} (${r.shards.length} shards)` : `Evacuation ${cell(r.plan.name)}`}: ${verdict}`,
    '',
    `Exit code ${r.exitCode} · driver ${cell(r.driver)} · makespan ${duration(t.makespanS)} (lower bound from link bandwidth ${duration(t.lowerBoundS)}) · ${cell(r.plan.file)} \`${r.plan.digest.slice(0, 19)}…\``,
    '',
    '| VMs | moved live | moved cold | left in place | failed | not placeable | pinned |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    `| ${t.vms} | ${t.live} | ${t.cold} | ${t.left} | ${t.failed} | ${t.unplaced} | ${t.pinned} |`,
    '',
    '| source host | empty | still holds |',
    '|---|---|---|',
    ...r.proofs.map((p) => `| ${cell(p.host)} | ${p.empty ? 'yes' : '**no**'} | ${cell(p.left.map((l) => `${l.vm} (${l.state})`).join(', '))} |`),
  ];
  if (r.shards) {
    out.push('', '### Shards', '', '| shard | result | exit code | VMs | moved | sources empty | report |', '|---|---|---:|---:|---:|---:|---|');
    out.push(...r.shards.map((s) => `| ${cell(s.name)} | ${s.result === 'complete' ? s.result : `**${s.result}**`} | ${s.exitCode ?? ''} | ${s.vms} | ${s.moved} | ${s.sourcesEmpty} of ${s.sources} | ${cell(s.report ?? 'none')} |`));
  }
  const notMoved = r.vms.filter((v) => v.status !== 'moved');
  if (notMoved.length > 0) {
    out.push('', '### Not moved', '', '| VM | status | on | reason |', '|---|---|---|---|');
    out.push(...notMoved.map((v: ReportVm) => `| ${cell(v.vm)} | ${v.status} | ${cell(v.host ?? '?')} | ${cell(v.reason)} |`));
  }
  out.push('', `Reports: \`${paths.json}\`, \`${paths.html}\``, '');
  return out.join('\n');
}

/** After the run: close the last group, write the annotations, append the summary. */
export function finishInActions(out: Writable, r: Report, paths: { json: string; html: string }, env: NodeJS.ProcessEnv = process.env): void {
  for (const line of annotations(r)) out.write(`${line}\n`);
  appendSummary(out, r, paths, env);
}

/** Append the report's markdown summary to $GITHUB_STEP_SUMMARY, when it is set (a failure to is a warning). */
export function appendSummary(out: Writable, r: Report, paths: { json: string; html: string }, env: NodeJS.ProcessEnv = process.env): void {
  if (!env.GITHUB_STEP_SUMMARY) return;
  try {
    appendFileSync(env.GITHUB_STEP_SUMMARY, stepSummary(r, paths));
  } catch (e) {
    // The run is over and its reports are written: a summary that cannot be appended is said, never the run's end.
    out.write(`warning: cannot append the step summary to ${shown(env.GITHUB_STEP_SUMMARY)}: ${shown((e as NodeJS.ErrnoException).code ?? String(e))}\n`);
  }
}

/** A roll's annotations: an error per host not maintained (failed, skipped, could not be emptied). */
export function rollAnnotations(r: RollReport): string[] {
  return r.hosts.filter((h) => h.status !== 'maintained' && h.status !== 'pending')
    .map((h) => `::error title=${property(`${h.host} not maintained (${h.status})`)}::${data(h.why)}`);
}

/** A roll's step summary: the verdict, totals against evacuate-then-move-back, the waves, the hosts not maintained. */
export function rollSummary(r: RollReport): string {
  const t = r.totals;
  const gib = (b: number) => (b / 2 ** 30).toFixed(1);
  const out = [
    `## Rolling maintenance ${cell(r.plan.name)}: ${r.result === 'complete' ? `✅ all ${t.hosts} hosts maintained` : `❌ ${t.maintained} of ${t.hosts} hosts maintained (${r.result})`}`,
    '',
    `Exit code ${r.exitCode} · driver ${cell(r.driver)} · ${cell(r.plan.file)}`,
    '',
    '| | migrations | GiB |',
    '|---|---:|---:|',
    `| this roll | ${t.migrations} | ${gib(t.bytes)} |`,
    `| evacuate then move back | ${t.moveBack.migrations} | ${gib(t.moveBack.bytes)} |`,
    '',
    '| wave | hosts | moves | exit code |',
    '|---:|---|---:|---:|',
    ...r.waves.map((w) => `| ${w.wave} | ${cell(w.hosts.join(', '))} | ${w.moves} | ${w.exitCode ?? ''} |`),
  ];
  const bad = r.hosts.filter((h) => h.status !== 'maintained');
  if (bad.length > 0) out.push('', '### Not maintained', '', '| host | status | why |', '|---|---|---|', ...bad.map((h) => `| ${cell(h.host)} | ${h.status} | ${cell(h.why)} |`));
  out.push('');
  return out.join('\n');
}

/** After a roll in Actions: the annotations, and the summary appended when GITHUB_STEP_SUMMARY is set. */
export function finishRollInActions(out: Writable, r: RollReport, env: NodeJS.ProcessEnv = process.env): void {
  for (const line of rollAnnotations(r)) out.write(`${line}\n`);
  if (!env.GITHUB_STEP_SUMMARY) return;
  try {
    appendFileSync(env.GITHUB_STEP_SUMMARY, rollSummary(r));
  } catch (e) {
    out.write(`warning: cannot append the step summary to ${shown(env.GITHUB_STEP_SUMMARY)}: ${shown((e as NodeJS.ErrnoException).code ?? String(e))}\n`);
  }
}
