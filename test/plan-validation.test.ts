import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EvacError } from '../scripts/errors.ts';
import { loadPlan } from '../scripts/plan/load.ts';
import { cli, ROOT } from './helpers.ts';

const problemsOf = (file: string) => {
  try {
    loadPlan(file);
  } catch (e) {
    if (e instanceof EvacError) return e.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
    throw e;
  }
  throw new Error(`${file} was accepted`);
};

describe('plans', () => {
  const plans = readdirSync(join(ROOT, 'plans')).filter((f) => f.endsWith('.yaml'));

  it.each(plans)('plans/%s validates', (f) => {
    const loaded = loadPlan(join(ROOT, 'plans', f));
    expect(loaded.plan.version).toBe(1);
    expect(loaded.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it.each(plans)('plans/%s points editors at the schema', (f) => {
    const head = readFileSync(join(ROOT, 'plans', f), 'utf8').split('\n')[0];
    expect(head).toBe('# yaml-language-server: $schema=../schemas/plan.schema.json');
  });
});

describe('known-bad plans', () => {
  const bad = (name: string) => join(ROOT, 'test/fixtures/bad', name);

  it('bad YAML: the parser error with its position', () => {
    expect(problemsOf(bad('yaml-syntax.yaml'))).toEqual([expect.stringMatching(/^4:1 : YAML: Flow sequence/)]);
  });

  it('wrong types: every error at once, each with line:col and field', () => {
    expect(problemsOf(bad('wrong-types.yaml'))).toEqual([
      expect.stringMatching(/^2:7 name: 'Wrong Types' does not match/),
      "7:30 fleet.sim.hosts[0].vcpu: must be integer (got string 'many')",
      "10:72 fleet.sim.vms[0].storage: must be one of 'shared', 'local' (got 'nfs')",
      "11:10 sources: must be array (got string 'src-1')",
      "13:9 migration.mode: must be one of 'live', 'cold', 'live-then-cold' (got 'teleport')",
    ]);
  });

  it('unknown keys: named, located at the key, with the allowed ones', () => {
    const p = problemsOf(bad('unknown-keys.yaml'));
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/^13:3 migratoin: unknown key 'migratoin'; allowed here: .*migration/);
    expect(p[1]).toMatch(/^10:71 fleet\.sim\.vms\[0\]\.colour: unknown key 'colour'/);
  });

  it('unknown hosts: each one, with a suggestion', () => {
    expect(problemsOf(bad('unknown-hosts.yaml'))).toEqual([
      "10:29 fleet.sim.vms[0].host: unknown host 'src-9'; did you mean 'src-1'?",
      "11:18 sources[1]: unknown host 'scr-1'; did you mean 'src-1'?",
      "13:18 destinations.hosts[1]: unknown host 'dst-7'; did you mean 'dst-1'?",
    ]);
  });

  it('semantic rules: duplicates, source as destination, limits below 1', () => {
    expect(problemsOf(bad('rules.yaml'))).toEqual([
      "11:17 fleet.sim.vms[1].name: VM 'vm-1' is declared twice",
      "12:18 sources[1]: source 'src-1' is listed twice",
      "14:18 destinations.hosts[1]: 'src-1' is both a source and a destination; a host under maintenance cannot receive VMs",
      '16:25 migration.concurrency.total: must be at least 1 (got 0); 1 means one migration at a time',
    ]);
  });

  it('the version is checked first, with its own message', () => {
    expect(problemsOf(bad('version.yaml'))).toEqual(['1:10 version: plan format version 2 is not supported; this evacuator reads version 1']);
  });

  it.each(['validate', 'plan', 'run'])('%s on a bad plan: exit 2, file:line:col on stderr, no report written', async (cmd) => {
    const r = await cli(cmd, 'test/fixtures/bad/unknown-hosts.yaml', ...(cmd === 'run' ? ['--reports', '/nonexistent/never-created'] : []));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("test/fixtures/bad/unknown-hosts.yaml:11:18: sources[1]: unknown host 'scr-1'");
    expect(r.stdout).toBe('');
  });

  it('a missing plan file: exit 2 with what to do', async () => {
    const r = await cli('validate', 'plans/nope.yaml');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot read plan plans\/nope\.yaml: ENOENT/);
  });
});
