/**
 * The roll's report: reports/<plan>.json (schemas/roll-report.schema.json, generated from
 * RollReport and enforced before writing) and a self-contained HTML page: the verdict, the
 * totals against the move-back baseline, the waves, each host's timeline (evacuate, maintain,
 * check, back in service) and each VM's moves. Every value from the plan, the fleet or a command's
 * output goes through esc().
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { EvacError } from '../errors.ts';
import { duration, esc } from '../report/html.ts';

export type HostStatus = 'maintained' | 'failed' | 'skipped' | 'blocked' | 'pending';

export interface RollHost {
  host: string;
  wave: number | null;
  status: HostStatus;
  why: string;
  /** On the driver's clock, seconds from the roll's start. */
  evacuated?: { startS: number; endS: number };
  maintained?: { startS: number; endS: number; ok: boolean; output?: string };
  checked?: { startS: number; endS: number; ok: boolean; detail: string };
  inServiceS?: number;
  /** rolling.pinned: shutdown-restart: the pinned VMs shut down on this host for its maintenance, and whether each runs again. */
  pinned?: { vm: string; stoppedS: number; startedS?: number; running: boolean; detail: string }[];
}

export interface RollVm {
  vm: string;
  origin: string;
  host: string;
  moves: { wave: number; from: string; to: string; method: string; bytes: number }[];
}

export interface RollReport {
  version: 1;
  kind: 'rolling';
  plan: { name: string; file: string; digest: string };
  driver: string;
  startedAt: string;
  endedAt: string;
  result: 'complete' | 'incomplete' | 'interrupted' | 'refused';
  exitCode: number;
  error?: string;
  waves: { wave: number; hosts: string[]; exitCode: number | null; moves: number; bytes: number; report?: string }[];
  hosts: RollHost[];
  vms: RollVm[];
  hooks: { hook: string; host?: string; ok: boolean; detail: string; output: string }[];
  warnings: string[];
  totals: {
    hosts: number; maintained: number; failed: number; skipped: number; blocked: number;
    migrations: number; bytes: number; vmsMoved: number; movedAgain: number;
    /** What evacuate-then-move-back (peers' way: each moved VM out and back) would cost: 2 moves per VM, each of its first move's bytes. */
    moveBack: { migrations: number; bytes: number };
    returned: number;
  };
}

let validate: ValidateFunction | undefined;
/** Problems with a roll report against its schema; none when it matches. */
export function rollReportProblems(report: unknown): string[] {
  validate ??= new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(new URL('../../schemas/roll-report.schema.json', import.meta.url), 'utf8')) as object);
  if (validate(report)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`);
}

export function writeRollReports(dir: string, report: RollReport): { json: string; html: string } {
  const problems = rollReportProblems(report);
  if (problems.length > 0) throw new EvacError(`internal error: the roll report does not match schemas/roll-report.schema.json: ${problems.join('; ')}`, 'internal');
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${report.plan.name}.json`);
  const html = join(dir, `${report.plan.name}.html`);
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(html, renderRollHtml(report));
  return { json, html };
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

export function renderRollHtml(r: RollReport): string {
  const t = r.totals;
  const verdict = r.result === 'complete' ? `All ${t.hosts} hosts maintained` : `${t.maintained} of ${t.hosts} hosts maintained (${r.result})`;
  const end = Math.max(1, ...r.hosts.map((h) => h.inServiceS ?? h.checked?.endS ?? h.maintained?.endS ?? h.evacuated?.endS ?? 0));
  const bar = (span: { startS: number; endS: number } | undefined, cls: string, title: string) => (span
    ? `<span class="seg ${cls}" style="left:${((span.startS / end) * 100).toFixed(2)}%;width:${Math.max(0.3, ((span.endS - span.startS) / end) * 100).toFixed(2)}%" title="${esc(title)}"></span>` : '');
  const hostRows = r.hosts.map((h) => `<tr class="${esc(h.status)}"><td class="name">${esc(h.host)}</td><td>${h.wave ?? ''}</td><td>${esc(h.status)}</td>`
    + `<td class="tl"><div class="track">${bar(h.evacuated, 'ev', `evacuate ${h.evacuated?.startS}-${h.evacuated?.endS} s`)}${bar(h.maintained, 'mt', `maintain ${h.maintained?.startS}-${h.maintained?.endS} s`)}${bar(h.checked, 'ck', `check ${h.checked?.startS}-${h.checked?.endS} s`)}</div></td>`
    + `<td>${h.inServiceS !== undefined ? duration(h.inServiceS) : ''}</td><td class="why">${esc(h.why || h.checked?.detail || '')}</td></tr>`).join('\n');
  const waveRows = r.waves.map((w) => `<tr><td>${w.wave}</td><td class="name">${esc(w.hosts.join(', '))}</td><td>${w.moves}</td><td>${gib(w.bytes)}</td><td>${w.exitCode ?? ''}</td></tr>`).join('\n');
  const vmRows = r.vms.map((v) => `<tr><td class="name">${esc(v.vm)}</td><td class="name">${esc(v.origin)}</td><td class="name">${esc(v.host)}</td><td>${v.moves.length}</td><td class="name">${esc(v.moves.map((m) => `w${m.wave}: ${m.from} → ${m.to} (${m.method})`).join('; '))}</td></tr>`).join('\n');
  const hooks = r.hooks.map((h) => `<details><summary>${esc(h.hook)}${h.host ? ` ${esc(h.host)}` : ''}: ${h.ok ? 'ok' : esc(h.detail)}</summary><pre>${esc(h.output)}</pre></details>`).join('\n');
  const pinned = r.hosts.flatMap((h) => (h.pinned ?? []).map((p) => `<tr class="${p.running ? '' : 'failed'}"><td class="name">${esc(p.vm)}</td><td class="name">${esc(h.host)}</td><td>${duration(p.stoppedS)}</td><td>${p.startedS !== undefined ? duration(p.startedS) : ''}</td><td>${p.startedS !== undefined ? duration(p.startedS - p.stoppedS) : ''}</td><td class="why">${esc(p.running ? p.detail : `NOT RUNNING: ${p.detail}`)}</td></tr>`)).join('\n');
  const outputs = r.hosts.filter((h) => h.maintained?.output).map((h) => `<details><summary>${esc(h.host)}: maintenance output</summary><pre>${esc(h.maintained!.output)}</pre></details>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Roll ${esc(r.plan.name)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;max-width:1200px;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem;table-layout:fixed}
th,td{border-bottom:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.name,td.why{overflow-wrap:anywhere}
.track{position:relative;height:12px;background:#f3f3f3}
.seg{position:absolute;top:0;height:12px}
.ev{background:#4a90d9}.mt{background:#e0a030}.ck{background:#5cb85c}
tr.failed td,tr.blocked td{background:#fdecea}tr.skipped td{background:#fff6e0}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:.5rem}
.verdict{font-size:1.3rem;font-weight:600}
</style></head><body>
<h1>Rolling maintenance ${esc(r.plan.name)}</h1>
<p class="verdict">${esc(verdict)} · exit code ${r.exitCode}</p>
${r.error ? `<p><strong>${esc(r.error)}</strong></p>` : ''}
<p>${esc(r.plan.file)} · driver ${esc(r.driver)} · ${esc(r.startedAt)} – ${esc(r.endedAt)}</p>
<h2>Totals</h2>
<table><tr><th></th><th>migrations</th><th>bytes</th></tr>
<tr><td>this roll</td><td>${t.migrations}</td><td>${gib(t.bytes)}</td></tr>
<tr><td>evacuate then move back (2 moves per VM)</td><td>${t.moveBack.migrations}</td><td>${gib(t.moveBack.bytes)}</td></tr></table>
<p>${t.vmsMoved} VMs moved; ${t.movedAgain} moves were a VM's second or later (it had landed on a host not yet maintained); ${t.returned} returned to their origin.
Hosts: ${t.maintained} maintained, ${t.failed} failed, ${t.skipped} skipped, ${t.blocked} could not be emptied.</p>
<h2>Waves</h2>
<table><thead><tr><th style="width:4rem">wave</th><th>hosts</th><th style="width:6rem">moves</th><th style="width:8rem">bytes</th><th style="width:6rem">exit code</th></tr></thead><tbody>
${waveRows}
</tbody></table>
<h2>Hosts</h2>
<p><span class="seg ev" style="position:static;display:inline-block;width:1em"></span> evacuate <span class="seg mt" style="position:static;display:inline-block;width:1em"></span> maintain <span class="seg ck" style="position:static;display:inline-block;width:1em"></span> check</p>
<table><thead><tr><th style="width:14rem">host</th><th style="width:4rem">wave</th><th style="width:7rem">status</th><th>timeline (0 – ${duration(end)})</th><th style="width:7rem">in service</th><th>why</th></tr></thead><tbody>
${hostRows}
</tbody></table>
${pinned ? `<h2>Pinned VMs shut down and started again on their host</h2>
<table><thead><tr><th>VM</th><th>host</th><th style="width:7rem">shut down at</th><th style="width:7rem">started at</th><th style="width:7rem">down for</th><th>result</th></tr></thead><tbody>
${pinned}
</tbody></table>` : ''}
<h2>VMs that moved</h2>
<table><thead><tr><th>VM</th><th>started on</th><th>now on</th><th style="width:5rem">moves</th><th>moves</th></tr></thead><tbody>
${vmRows}
</tbody></table>
${hooks || outputs ? `<h2>Commands</h2>\n${hooks}\n${outputs}` : ''}
</body></html>
`;
}
