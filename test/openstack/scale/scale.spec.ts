/**
 * Nova at hundreds of servers: a scale cloud of 6 computes and 200 servers on the fake driver
 * (npm run cloud -- up --computes 6 --servers 200), cmp1 and cmp2 holding 65 each, both emptied
 * at once onto cmp3..cmp6 with 16 live migrations in flight. Every server ends ACTIVE on another
 * compute, the sources are empty in Nova and in the report's proof, the journal rebuilds the same
 * report, and the waits polled by listing: no migration read its server or record on its own.
 * The figures (API calls and wall time per migration, Nova's own time) are printed, not asserted.
 */
import { describe, expect, it } from 'vitest';
import { buildReport } from '../../../scripts/report/build.ts';
import { reportFromJournal } from '../../../scripts/report/replay.ts';
import { readJournal } from '../../../scripts/runner/journal.ts';
import { spread, scaleShape } from '../../cloud/config.ts';
import { admin, evacuateAtScale, servers, summary } from '../../cloud/scale.ts';

const SOURCES = ['cmp1', 'cmp2'];
const DESTINATIONS = ['cmp3', 'cmp4', 'cmp5', 'cmp6'];

describe('a 200-server cloud', () => {
  it('empties two computes of 65 servers each at once, polling Nova by listing', async () => {
    const os = admin();
    const before = await servers(os);
    const planned = spread(scaleShape(6, 200));
    expect(before).toHaveLength(200);
    for (const h of SOURCES) expect(before.filter((s) => s['OS-EXT-SRV-ATTR:host'] === h)).toHaveLength(planned.get(h)!);
    const onSources = before.filter((s) => SOURCES.includes(s['OS-EXT-SRV-ATTR:host']));
    expect(onSources.length).toBeGreaterThanOrEqual(120);

    const r = await evacuateAtScale({ name: 'scale-cmp1-cmp2', sources: SOURCES, destinations: DESTINATIONS, polling: 'list', perSource: 8 });
    console.log(`two computes of 65 at once, listing:\n  ${summary(r)}\n  routes: ${JSON.stringify(r.requests.routes)}`);
    expect(r.exitCode, JSON.stringify(r.report.vms.filter((v) => v.status !== 'moved'))).toBe(0);
    expect(r.moved).toBe(onSources.length);

    // Every server of the sources ACTIVE on a destination, with no task; the others where they were.
    const after = new Map((await servers(os)).map((s) => [s.id, s]));
    expect(after.size).toBe(200);
    for (const s of before) {
      const now = after.get(s.id)!;
      expect(now.status, s.name).toBe('ACTIVE');
      expect(now['OS-EXT-STS:task_state'], s.name).toBeNull();
      if (SOURCES.includes(s['OS-EXT-SRV-ATTR:host'])) expect(DESTINATIONS, s.name).toContain(now['OS-EXT-SRV-ATTR:host']);
      else expect(now['OS-EXT-SRV-ATTR:host'], s.name).toBe(s['OS-EXT-SRV-ATTR:host']);
      const moved = r.report.vms.find((v) => v.vm === s.name);
      if (moved) expect(moved.host, s.name).toBe(now['OS-EXT-SRV-ATTR:host']);
    }
    // The sources empty: in Nova, and in the run's proof.
    for (const h of SOURCES) {
      const left = await os.list<{ id: string }>('compute', `/servers/detail?all_tenants=1&host=${h}`, 'servers', { microversion: '2.84', marker: (x) => x.id });
      expect(left, h).toEqual([]);
    }
    expect(r.report.proofs).toEqual(SOURCES.map((host) => ({ host, empty: true, left: [] })));

    // The journal: one successful move-end per server, a run-end, and the same report rebuilt from it.
    const lines = readJournal(r.journal);
    const ends = lines.filter((l) => l.kind === 'move-end');
    expect(ends.filter((l) => l.kind === 'move-end' && l.outcome === 'ok').map((l) => (l as { vm: string }).vm).sort()).toEqual(onSources.map((s) => s.name).sort());
    expect(ends).toHaveLength(onSources.length);
    expect(lines.at(-1)!.kind).toBe('run-end');
    const rebuilt = JSON.parse(JSON.stringify(buildReport(reportFromJournal(lines, r.journal))));
    expect(rebuilt).toEqual(JSON.parse(JSON.stringify(r.report)));

    // The waits listed: no migration of one server was read on its own, and a server only once, by
    // the runner's look-up after its migration (outcomes are classified from where it is).
    const perServer = Object.entries(r.requests.routes).filter(([k]) => /instance_uuid|^GET \S*\/servers\/\{id\}\/migrations$/.test(k));
    expect(perServer).toEqual([]);
    const reads = Object.entries(r.requests.routes).find(([k]) => /^GET \S*\/servers\/\{id\}$/.test(k))?.[1] ?? 0;
    expect(reads).toBeLessThanOrEqual(onSources.length);
    expect(r.requests.routes[Object.keys(r.requests.routes).find((k) => k.startsWith('POST') && k.endsWith('/servers/{id}/action'))!]).toBe(onSources.length);
  });
});
