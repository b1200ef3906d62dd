/**
 * Names are hostile: whatever a host calls a VM or itself (ESC sequences, BEL, CR, LF, C1 CSI,
 * bidi overrides, `::` workflow commands, markdown links and images), nothing evacuator prints
 * lets it rewrite a terminal, start a GitHub workflow command, add a line, or become a link in
 * the step summary. fast-check draws the names; the real sinks print them.
 */
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeBlueprint } from '../scripts/cli/commands.ts';
import { consoleSink, paint } from '../scripts/cli/console.ts';
import { annotations, groupSink, stepSummary } from '../scripts/cli/github.ts';
import { shownDeep } from '../scripts/cli/shown.ts';
import { marked } from 'marked';
import type { EvacEvent } from '../scripts/events.ts';
import type { Blueprint } from '../scripts/preflight/blueprint.ts';
import type { Report } from '../scripts/report/build.ts';
import { loadPlan } from '../scripts/plan/load.ts';
import { openDriver } from '../scripts/fleet/open.ts';
import { evacuate } from '../scripts/runner/evacuate.ts';
import { cli, planFile, tempDir } from './helpers.ts';

const PIECES = ['\x1b[2J', '\x1b]0;owned\x07', '\x07', '\r', '\n', '\r\n', '\x9b31m', '\u202e', '\u2066', '\u200f', '\u2028', '::', '::error::pwned', '::set-env name=X::1',
  '[click](https://evil.example)', '![img](https://evil.example/x.png)', 'https://evil.example/p', 'www.evil.example', 'ops@evil.example', '<https://evil.example>', '%0A::warning::x', '`code`', '*bold*', '|', '\t', 'a', 'vm-1', ' ', 'é'];
const hostile = fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 6 }).map((p) => p.join(''));
/** What must never reach an output raw (our own colours are off here). */
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]/;

function captured() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  return { out, text: () => text };
}

/** No raw control character; no line a runner would read as a workflow command unless it is one of ours. */
function checkLines(text: string, ours: RegExp = /^$/) {
  expect(text).not.toMatch(RAW);
  for (const line of text.split('\n')) {
    if (ours.test(line)) continue;
    expect(line.trim().startsWith('::'), JSON.stringify(line)).toBe(false);
  }
}

describe('hostile names in every output', () => {
  it('the terminal lines: one line per event, nothing raw, no workflow command', () => {
    fc.assert(fc.property(hostile, hostile, hostile, (vm, host, detail) => {
      const { out, text } = captured();
      const sink = consoleSink({ out, color: false, live: false });
      const events: EvacEvent[] = [
        { kind: 'move-start', t: 1, vm, source: host, destination: host, method: 'live', attempt: 1 },
        { kind: 'move-end', t: 2, vm, source: host, destination: host, method: 'live', attempt: 1, outcome: 'error', detail, bytes: 0, downtimeMs: 0, start: 1, foundOn: host },
        { kind: 'vm-left', t: 3, vm, source: host, why: detail },
        { kind: 'warning', t: 4, message: detail },
        { kind: 'host-empty', t: 5, host, empty: false, left: [vm, vm] },
        { kind: 'stage', t: 6, stage: 'verify', detail },
      ];
      for (const e of events) sink(e);
      const t = text();
      checkLines(t);
      expect(t.split('\n').filter(Boolean)).toHaveLength(events.length);
    }), { numRuns: 300 });
  });

  it('the GitHub groups and annotations: only our commands, one line each; the step summary: no raw character, no link, no image, one row per VM', async () => {
    const dir = tempDir();
    const loaded = loadPlan('plans/example.yaml');
    const done = await evacuate(loaded, (o) => openDriver(loaded.plan, o), () => {}, { reportsDir: dir, writeReports: false });
    fc.assert(fc.property(fc.array(hostile, { minLength: 4, maxLength: 4 }), (names) => {
      const r = structuredClone(done.report) as Report;
      r.vms.forEach((v, i) => {
        v.vm = `${names[i % 4]}${i}`;
        v.reason = names[(i + 1) % 4];
        if (v.host) v.host = names[(i + 2) % 4];
      });
      r.proofs.forEach((p) => {
        p.host = names[3];
        p.left.forEach((l) => (l.vm = names[0]));
      });
      r.plan.name = names[1];
      const lines = annotations(r);
      for (const l of lines) {
        expect(l).toMatch(/^::(error|warning|notice) title=[^\n]*::[^\n]*$/);
        expect(l).not.toMatch(RAW);
        // The title property cannot end early: no raw ':' or ',' in it.
        expect(l.slice(l.indexOf(' title=') + 7, l.indexOf('::', 2))).not.toMatch(/[:,]/);
      }
      const { out, text } = captured();
      const groups = groupSink(out);
      groups({ kind: 'stage', t: 0, stage: 'verify', detail: names.join(' ') });
      groups.close();
      checkLines(text(), /^::(group|endgroup)::/);
      expect(text().split('\n').filter(Boolean)).toHaveLength(2);
      const md = stepSummary(r, { json: 'r.json', html: 'r.html' });
      expect(md).not.toMatch(RAW);
      // Links and images from names are inert: every [ and ! a name brought is escaped.
      expect(md.replace(/\\[[\]!]/g, '')).not.toMatch(/!?\[[^\]]*\]\([^)]*\)/);
      // Rendered as GitHub does (GFM, autolinks included): no link, no image at all.
      const html = marked.parse(md, { gfm: true, async: false });
      expect(html).not.toMatch(/<a\b|<img\b/);
      const rows = md.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| VMs'));
      const notMoved = r.vms.filter((v) => v.status !== 'moved' && v.status !== 'pinned').length;
      expect(rows.length).toBeGreaterThanOrEqual(notMoved);
    }), { numRuns: 200 });
  });

  it('plan\'s listing of moves, pins and refusals', async () => {
    const loaded = loadPlan('plans/example.yaml');
    const dir = tempDir();
    const done = await evacuate(loaded, (o) => openDriver(loaded.plan, o), () => {}, { reportsDir: dir, writeReports: false });
    fc.assert(fc.property(hostile, hostile, (name, why) => {
      const bp = structuredClone(done.blueprint) as Blueprint;
      bp.moves.forEach((m) => ((m.vm = name), (m.destination = name)));
      bp.unplaced.forEach((u) => ((u.vm = name), u.reasons.forEach((x) => (x.text = why))));
      bp.plan.name = name;
      const text = describeBlueprint(shownDeep(bp), paint(false));
      checkLines(text);
    }), { numRuns: 200 });
  });
});

describe('names that are Object built-ins', () => {
  it('VMs named constructor, __proto__, toString... are placed like any other (they were refused as "assigned to function Object()")', async () => {
    const names = ['constructor', 'hasOwnProperty', 'valueOf', 'toString', '__proto__', 'isPrototypeOf', '__defineGetter__', 'plain'];
    const plan = {
      version: 1, name: 'proto-names',
      fleet: { driver: 'sim', sim: {
        hosts: [{ name: 'src', vcpu: 64, memory_mib: 262144, disk_gib: 1000 }, { name: 'dst', vcpu: 64, memory_mib: 262144, disk_gib: 1000 }],
        vms: names.map((name) => ({ name, host: 'src', vcpu: 1, memory_mib: 1024 })),
      } },
      sources: ['src'],
    };
    const r = await cli('plan', '--json', planFile(plan));
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { moves: { vm: string; destination: string }[]; unplaced: unknown[] };
    expect(out.unplaced).toEqual([]);
    expect(out.moves.map((m) => m.vm).sort()).toEqual([...names].sort());
  });
});
