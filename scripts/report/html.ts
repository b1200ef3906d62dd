/**
 * The HTML report: one self-contained file (no network, works from file:// and on paper).
 * Every value from the plan or the fleet goes through esc(); the inline script only sorts and
 * filters rows that are already rendered.
 */
import { escape } from '../cli/shown.ts';
import type { Report, ReportVm } from './build.ts';

/** Controls (but tab and line feed), DEL, C1, bidi controls and marks, line and paragraph separators: shown as visible escapes, as on a terminal. */
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]/g;

export function esc(value: unknown): string {
  return String(value)
    .replace(INVISIBLE, escape)
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STATUS_ORDER: Record<string, number> = { left: 0, unplaced: 1, pinned: 2, moved: 3 };

function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(0)} MiB`;
  return `${n} B`;
}

export function duration(s: number | null): string {
  if (s === null) return '';
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

function downtime(ms: number): string {
  return ms >= 10_000 ? duration(ms / 1000) : `${ms} ms`;
}

function summary(r: Report): string {
  const t = r.totals;
  const rb = r.rebalance;
  const allEmpty = rb ? rb.reached : t.sourcesEmpty === t.sources;
  const verdict = rb
    ? `${r.result === 'interrupted' ? 'Interrupted: ' : ''}${rb.reached ? 'Every host is under the target' : 'The target is NOT reached'}`
    : r.result === 'interrupted'
      ? `Interrupted: ${t.sourcesEmpty} of ${t.sources} source hosts empty`
      : allEmpty ? (r.proofs.some((p) => p.scoped) ? `None of the ${t.sources} source hosts holds a VM of this plan (the plan moves only some VMs)` : `All ${t.sources} source hosts are empty`) : `${t.sources - t.sourcesEmpty} of ${t.sources} source hosts are NOT empty`;
  const card = (label: string, value: string | number, cls = '') => `<div class="card ${cls}"><div class="v">${esc(value)}</div><div class="l">${esc(label)}</div></div>`;
  return `<section class="verdict ${allEmpty ? 'ok' : 'bad'}"><h2>${esc(verdict)}</h2>
<p>exit code ${esc(r.exitCode)} · ${esc(r.driver)} driver · makespan ${esc(duration(t.makespanS))} (bound from link bandwidth: ${esc(duration(t.lowerBoundS))})${t.estimates ? ` · moves took ${esc(t.estimates.medianRatio.toFixed(2))}x their estimate (median of ${esc(t.estimates.compared)})` : ''}</p></section>
<section class="cards">${card('VMs', t.vms)}${card('moved live', t.live, 'live')}${card('moved cold', t.cold, 'cold')}${card('left in place', t.left, t.left ? 'bad' : '')}${card('not placeable', t.unplaced, t.unplaced ? 'warn' : '')}${card('pinned', t.pinned)}${card('sent', bytes(t.bytes))}</section>
${r.proofs.filter((p) => !p.empty).map((p) => `<p class="left-on">${esc(p.host)} still holds: ${p.left.map((l) => `<b>${esc(l.vm)}</b> (${esc(l.state)}: ${esc(l.why)})`).join(', ')}</p>`).join('\n')}`;
}

function timeline(r: Report): string {
  const moves = r.vms.filter((v) => v.attempts.length > 0);
  if (moves.length === 0) return '<p>No migration was started.</p>';
  const end = moves.reduce((m, v) => Math.max(m, v.endS ?? 0), Math.max(r.totals.makespanS, 1));
  const lanes = [...new Set(moves.map((v) => v.source))].sort();
  const W = 1000;
  const laneH = 22;
  const rows: string[] = [];
  let top = 0;
  lanes.forEach((lane, li) => {
    const inLane = moves.filter((v) => v.source === lane).flatMap((v) => v.attempts.map((a) => ({ v, a })));
    // Stack overlapping bars in sub-rows so concurrency is visible.
    const rowEnds: number[] = [];
    const bars = inLane.sort((x, y) => x.a.startS - y.a.startS).map(({ v, a }) => {
      let row = rowEnds.findIndex((e) => e <= a.startS);
      if (row < 0) row = rowEnds.push(0) - 1;
      rowEnds[row] = a.endS;
      return { v, a, row };
    });
    const height = Math.max(1, rowEnds.length) * laneH;
    const rects = bars.map(({ v, a, row }) => {
      const x = 120 + (a.startS / end) * (W - 130);
      const w = Math.max(2, ((a.endS - a.startS) / end) * (W - 130));
      const cls = a.outcome === 'ok' ? a.method : 'failed';
      return `<rect class="${cls}" x="${x.toFixed(1)}" y="${top + row * laneH + 3}" width="${w.toFixed(1)}" height="${laneH - 6}" rx="3"><title>${esc(v.vm)}: ${esc(a.method)} to ${esc(a.destination)}, ${esc(a.outcome)}, ${esc(duration(a.durationS))}</title></rect>`;
    });
    rows.push(`<g><text x="4" y="${top + 15}">${esc(lane)}</text>${li > 0 ? `<line x1="0" x2="${W}" y1="${top}" y2="${top}"/>` : ''}${rects.join('')}</g>`);
    top += height;
  });
  const total = top;
  const ticks = Array.from({ length: 6 }, (_, i) => {
    const x = 120 + (i / 5) * (W - 130);
    const anchor = i === 0 ? 'start' : i === 5 ? 'end' : 'middle';
    return `<text class="tick" x="${x.toFixed(0)}" y="${total + 14}" text-anchor="${anchor}">${esc(duration((end * i) / 5))}</text>`;
  });
  return `<svg class="timeline" viewBox="0 0 ${W} ${total + 20}" role="img" aria-label="migrations per source host over time">${rows.join('')}${ticks.join('')}</svg>
<p class="legend"><span class="sw live"></span>live <span class="sw cold"></span>cold <span class="sw failed"></span>failed attempt</p>`;
}

function utilization(r: Report): string {
  // Against what the plan lets the host hold (capacity - reserve, x overcommit): the bar fills to
  // its limit, the figure is the real ratio, and past the limit the bar turns red and says so.
  const bar = (used: number, limit: number, cls: string) => {
    const ratio = limit > 0 ? (used / limit) * 100 : used > 0 ? Infinity : 0;
    const over = ratio > 100 + 1e-9;
    const shown = Number.isFinite(ratio) ? `${ratio.toFixed(0)}%` : 'no room';
    return `<div class="meter${over ? ' over' : ''}" title="${esc(`${Math.round(used)} of ${Math.round(limit)}`)}"><div class="bar ${cls}"><span style="width:${Math.min(100, Number.isFinite(ratio) ? ratio : 100).toFixed(1)}%"></span></div><em>${shown}${over ? ' over the limit' : ''}</em></div>`;
  };
  const rows = r.hosts.map((h, i) => {
    const cells = ['memory_mib', 'vcpu'].map((k) => {
      const limit = h.limit?.[k] ?? h.capacity[k] ?? 0;
      return `<td>${bar(h.before[k] ?? 0, limit, 'before')}${h.after ? bar(h.after[k] ?? 0, limit, 'after') : h.down ? '<em class="down">did not answer the final check</em>' : ''}</td>`;
    });
    return `<tr${i >= PAGE ? ' hidden' : ''}><th>${esc(h.name)}</th><td>${esc(h.role)}</td>${cells.join('')}</tr>`;
  });
  return `<table class="util paged" id="hosts"><thead><tr><th>host</th><th>role</th><th>memory (before / after, of what the plan allows: capacity - reserve, x overcommit)</th><th>vCPU (before / after, same)</th></tr></thead><tbody>${rows.join('')}</tbody></table>${pager('hosts', r.hosts.length)}`;
}

/**
 * Rows per page of the VM and host tables. A region's report has thousands of each: the first
 * page is in the page as sent (the others hidden, so the browser lays out a page, not the
 * region), and the script pages, filters and sorts over all of them. Printed, every row shows.
 */
const PAGE = 100;

/** The page buttons under a table, when it has more than one page. */
function pager(table: string, rows: number): string {
  if (rows <= PAGE) return '';
  return `<nav class="pager" data-for="${table}"><button type="button" data-step="-1" disabled>‹ previous</button> <span>rows 1–${PAGE} of ${rows}</span> <button type="button" data-step="1">next ›</button></nav>`;
}

function rebalanceSection(r: Report): string {
  const rb = r.rebalance!;
  const dims = Object.keys(rb.ceiling);
  const target = [...dims.map((k) => `${k} at most ${(rb.ceiling[k] * 100).toFixed(0)}%`), ...(rb.freeHosts ? [`free ${rb.freeHosts} host(s)`] : [])].join(', ');
  const p = (x: number | undefined) => (x === undefined ? '' : `${(x * 100).toFixed(1)}%`);
  const rows = rb.hosts.map((h) => `<tr><th>${esc(h.host)}</th>${dims.map((k) => `<td>${esc(p(h.before[k]))}</td><td>${esc(p(h.planned[k]))}</td><td class="${(h.after?.[k] ?? 0) > rb.ceiling[k] + 1e-9 ? 'over' : ''}">${esc(h.after ? p(h.after[k]) : '?')}</td>`).join('')}</tr>`);
  return `<h3>Rebalance</h3>
<p class="rb ${rb.reached ? 'ok' : 'bad'}">Target: ${esc(target)} · ${rb.reached ? 'reached on every host' : `not reached: ${esc(rb.shortfall.join('; '))}`} · planned ${esc(bytes(rb.plannedBytes))} to move${rb.freed.length ? ` · freed ${esc(rb.freed.join(', '))}` : ''}</p>
<table class="util"><thead><tr><th>host</th>${dims.map((k) => `<th>${esc(k)} before</th><th>planned</th><th>after</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>${pager('vms', rows.length)}`;
}

/** A region report (evacuator merge): one row per shard, a shard without a report in red. */
function shardsSection(r: Report): string {
  const rows = (r.shards ?? []).map((s) => `<tr class="${s.result === 'complete' ? '' : 'bad'}"><th>${esc(s.name)}</th><td>${esc(s.result)}</td><td>${esc(s.exitCode ?? '')}</td><td>${esc(s.vms)}</td><td>${esc(s.moved)}</td><td>${esc(`${s.sourcesEmpty} of ${s.sources}`)}</td><td>${esc(s.startedAt === null ? '' : `+${duration(s.offsetS)}`)}</td><td>${esc(s.file)}</td><td>${esc(s.report ?? 'none')}</td></tr>`);
  return `<h3>Shards</h3>
<table class="shards"><thead><tr><th>shard</th><th>result</th><th>exit code</th><th>VMs</th><th>moved</th><th>sources empty</th><th>started</th><th>plan</th><th>report</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function vmTable(vms: ReportVm[]): string {
  const sorted = [...vms].sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || a.vm.localeCompare(b.vm));
  const rows = sorted.map((v, i) => `<tr class="${esc(v.status)}"${i >= PAGE ? ' hidden' : ''}>
<td>${esc(v.vm)}</td><td data-sort="${STATUS_ORDER[v.status]}"><span class="pill ${esc(v.status)}">${esc(v.status)}</span></td><td>${esc(v.source)}</td><td>${esc(v.host ?? '')}</td><td>${esc(v.method)}</td>
<td data-sort="${v.durationS ?? -1}">${esc(duration(v.durationS))}</td><td data-sort="${v.downtimeMs}">${v.downtimeMs ? esc(downtime(v.downtimeMs)) : ''}</td><td data-sort="${v.bytes}">${v.bytes ? esc(bytes(v.bytes)) : ''}</td><td data-sort="${v.attempts.length}">${v.attempts.length}</td><td class="reason">${esc(v.reason)}</td></tr>`);
  return `<input id="filter" type="search" placeholder="Filter VMs (name, host, status, reason)" aria-label="filter VMs">
<table id="vms" class="paged"><thead><tr><th>VM</th><th>status</th><th>source</th><th>now on</th><th>method</th><th>duration</th><th>downtime</th><th>sent</th><th>attempts</th><th>reason</th></tr></thead>
<tbody>${rows.join('')}</tbody></table>${pager('vms', vms.length)}`;
}

const STYLE = `
:root{--live:#2563eb;--cold:#7c3aed;--bad:#dc2626;--warn:#d97706;--ok:#16a34a;--muted:#6b7280}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#111827;background:#f9fafb}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:0}h3{margin:28px 0 8px;font-size:15px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.meta{color:var(--muted);margin:0 0 16px}
.verdict{padding:14px 18px;border-radius:10px;color:#fff}.verdict p{margin:4px 0 0;opacity:.9}
.verdict.ok{background:var(--ok)}.verdict.bad{background:var(--bad)}
.cards{display:flex;gap:10px;flex-wrap:wrap;margin:14px 0}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:10px 16px;min-width:110px}
.card .v{font-size:22px;font-weight:600}.card .l{color:var(--muted)}
.card.live .v{color:var(--live)}.card.cold .v{color:var(--cold)}.card.bad .v{color:var(--bad)}.card.warn .v{color:var(--warn)}
.rb.ok{color:var(--ok)}.rb.bad{color:var(--bad)}td.over{color:var(--bad);font-weight:600}
.left-on{background:#fef2f2;border-left:4px solid var(--bad);padding:8px 12px}
svg.timeline{width:100%;background:#fff;border:1px solid #e5e7eb;border-radius:10px}
td,th,h1,h2,p,li,.left-on{overflow-wrap:anywhere}
svg text{font-size:11px;fill:#374151}svg line{stroke:#e5e7eb}
rect.live{fill:var(--live)}rect.cold{fill:var(--cold)}rect.failed{fill:var(--bad)}
.legend .sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin:0 4px 0 12px;vertical-align:-2px}
.sw.live{background:var(--live)}.sw.cold{background:var(--cold)}.sw.failed{background:var(--bad)}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e5e7eb}
th,td{padding:6px 8px;border-bottom:1px solid #f3f4f6;text-align:left;vertical-align:top}
thead th{background:#f3f4f6;cursor:pointer;user-select:none;white-space:nowrap}
td.reason{color:#374151;max-width:420px}tr.bad th,tr.bad td{color:var(--bad)}
.pill{padding:1px 8px;border-radius:999px;font-size:12px;color:#fff}
.pill.moved{background:var(--ok)}.pill.left{background:var(--bad)}.pill.unplaced{background:var(--warn)}.pill.pinned{background:var(--muted)}
.meter{display:flex;align-items:center;gap:8px;margin:3px 0}
.bar{position:relative;height:10px;background:#e5e7eb;border-radius:5px;width:160px;flex:none}
.bar span{position:absolute;left:0;top:0;bottom:0;border-radius:5px}.bar.before span{background:#9ca3af}.bar.after span{background:var(--live)}
.meter em{font-size:11px;font-style:normal;color:var(--muted)}
.meter.over .bar span{background:#dc2626}.meter.over em{color:#dc2626;font-weight:600}
#filter{width:100%;box-sizing:border-box;padding:8px 10px;margin:0 0 8px;border:1px solid #d1d5db;border-radius:8px;font:inherit}
.pager{margin:8px 0;display:flex;gap:10px;align-items:center;color:var(--muted)}
.pager button{font:inherit;padding:4px 10px;border:1px solid #d1d5db;border-radius:6px;background:#fff;cursor:pointer}
.pager button[disabled]{opacity:.4;cursor:default}
@media print{thead th{cursor:auto}#filter,.pager{display:none}body{background:#fff}table.paged tbody tr[hidden]{display:table-row}}
`;

const SCRIPT = `
(function(){
  var PAGE=${PAGE};
  // A paged table: all its rows in their order, those the filter keeps, the page shown.
  function paged(table, onChange){
    var body=table.tBodies[0];
    var nav=document.querySelector('nav.pager[data-for="'+table.id+'"]');
    var t={rows:Array.prototype.slice.call(body.rows), page:0};
    t.match=t.rows;
    t.show=function(){
      var pages=Math.max(1,Math.ceil(t.match.length/PAGE));
      t.page=Math.min(Math.max(t.page,0),pages-1);
      var from=t.page*PAGE, to=Math.min(from+PAGE,t.match.length);
      t.rows.forEach(function(r){r.hidden=true;});
      for(var i=from;i<to;i++) t.match[i].hidden=false;
      if(nav){
        nav.querySelector('span').textContent=t.match.length===0?'no rows':'rows '+(from+1)+'–'+to+' of '+t.match.length+(t.match.length<t.rows.length?' (filtered from '+t.rows.length+')':'');
        nav.querySelector('[data-step="-1"]').disabled=t.page===0;
        nav.querySelector('[data-step="1"]').disabled=t.page>=pages-1;
      }
    };
    if(nav) Array.prototype.forEach.call(nav.querySelectorAll('button'),function(b){
      b.addEventListener('click',function(){t.page+=Number(b.getAttribute('data-step'));t.show();});
    });
    return t;
  }
  var hosts=document.getElementById('hosts'); if(hosts) paged(hosts).show();
  var table=document.getElementById('vms'); if(!table) return;
  var body=table.tBodies[0];
  var t=paged(table);
  var text=new Map(t.rows.map(function(r){return [r,r.textContent.toLowerCase()];}));
  var q='';
  var filter=function(){ t.match=t.rows.filter(function(r){return q===''||text.get(r).indexOf(q)>=0;}); t.page=0; t.show(); };
  document.getElementById('filter').addEventListener('input',function(e){ q=e.target.value.toLowerCase(); filter(); });
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
    th.addEventListener('click',function(){
      var dir = th.getAttribute('aria-sort')==='ascending' ? -1 : 1;
      Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){c.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort', dir===1?'ascending':'descending');
      var key=new Map(t.rows.map(function(r){var c=r.cells[i];var s=c.getAttribute('data-sort');return [r,s===null?c.textContent:Number(s)];}));
      t.rows.sort(function(a,b){var x=key.get(a),y=key.get(b);return (x<y?-1:x>y?1:0)*dir;});
      var frag=document.createDocumentFragment(); t.rows.forEach(function(r){frag.appendChild(r);}); body.appendChild(frag);
      filter();
    });
  });
})();
`;

export function renderHtml(r: Report): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>evacuator: ${esc(r.plan.name)}</title><style>${STYLE}</style></head>
<body><main>
<h1>${r.shards ? `Region ${esc(r.plan.name)} (${esc(r.shards.length)} shards)` : `Evacuation ${esc(r.plan.name)}`}</h1>
<p class="meta">${esc(r.plan.file)} · ${esc(r.plan.digest.slice(0, 19))}… · ${esc(r.startedAt)} → ${esc(r.endedAt)}</p>
${summary(r)}
${r.shards ? shardsSection(r) : ''}
<h3>Timeline (per source host)</h3>
${timeline(r)}
${r.rebalance ? rebalanceSection(r) : ''}<h3>Hosts</h3>
${utilization(r)}
<h3>VMs</h3>
${vmTable(r.vms)}
${r.warnings.length ? `<h3>Warnings</h3><ul>${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ''}
</main><script>${SCRIPT}</script></body></html>
`;
}
