/**
 * `vms` selects VMs by name or glob. A pattern that selects nothing is a mistake (exit 2, at its
 * line, nothing written), a pattern cut short is refused when the plan loads, and moveback
 * writes names so that a VM named `glob-*` brings back only itself.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exactPattern, globToRegExp } from '../scripts/plan/settings.ts';
import { cli, planFile, tempDir } from './helpers.ts';

const fleet = (names: string[]) => ({
  driver: 'sim',
  sim: {
    hosts: [{ name: 's1', vcpu: 64, memory_mib: 262144, disk_gib: 1000 }, { name: 'd1', vcpu: 64, memory_mib: 262144, disk_gib: 1000 }],
    vms: names.map((name) => ({ name, host: 's1', vcpu: 1, memory_mib: 1024 })),
  },
});

describe('vms patterns', () => {
  it('exactPattern matches its name and nothing else, whatever the name', () => {
    const name = fc.string({ unit: fc.constantFrom(...'ab*?\\.-[]()^$|+{}'.split('')), minLength: 1, maxLength: 10 });
    fc.assert(fc.property(name, name, (a, b) => {
      expect(globToRegExp(exactPattern(a)).test(a)).toBe(true);
      if (a !== b) expect(globToRegExp(exactPattern(a)).test(b)).toBe(false);
    }), { numRuns: 500 });
  });

  it('a pattern that selects no VM on the sources: exit 2 at its line, for plan and run, nothing written', async () => {
    const dir = tempDir();
    const file = planFile({ version: 1, name: 'sel', fleet: fleet(['web-1', 'web-2']), sources: ['s1'], destinations: { hosts: ['d1'] }, vms: ['web-*', 'db-*'] }, dir);
    const line = readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes('db-*')) + 1;
    for (const cmd of ['plan', 'run']) {
      const r = await cli(cmd, file, ...(cmd === 'run' ? ['--reports', dir] : []));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${file}:${line}:`);
      expect(r.stderr).toMatch(/vms\[1\]: 'db-\*' selects no VM on the sources \(s1\)/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(readdirSync(dir).filter((f) => f.includes('journal') || f.endsWith('.json') || f.endsWith('.html'))).toEqual([]);
  });

  it('a pattern ending in a lone backslash is refused when the plan loads', async () => {
    const dir = tempDir();
    const file = planFile({ version: 1, name: 'sel', fleet: fleet(['a']), sources: ['s1'], vms: ['a\\'] }, dir);
    const r = await cli('validate', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/vms\[0\]: pattern 'a\\' ends with a lone backslash/);
  });

  it('moveback of a VM named glob-* brings back only that VM, not glob-a that never moved', async () => {
    const dir = tempDir();
    const file = planFile({ version: 1, name: 'globs', fleet: { ...fleet(['glob-*', 'glob-a', 'other']), sim: { ...fleet([]).sim, state_file: join(dir, 'fleet.json'), vms: [{ name: 'glob-*', host: 's1', vcpu: 1, memory_mib: 1024 }, { name: 'other', host: 's1', vcpu: 1, memory_mib: 1024 }, { name: 'glob-a', host: 'd1', vcpu: 1, memory_mib: 1024 }] } }, sources: ['s1'], destinations: { hosts: ['d1'] }, vms: [exactPattern('glob-*')] }, dir);
    const run = await cli('run', file, '--reports', dir);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const back = await cli('moveback', join(dir, 'globs.json'));
    expect(back.code, back.stderr).toBe(0);
    const mb = parse(readFileSync(join(dir, 'globs-moveback.yaml'), 'utf8'));
    expect(mb.vms).toEqual(['glob-\\*']);
    expect(existsSync(join(dir, 'globs-moveback.yaml'))).toBe(true);
    await cli('clear', file, '--reports', dir);
    const r = await cli('plan', join(dir, 'globs-moveback.yaml'), '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).moves.map((m: { vm: string }) => m.vm)).toEqual(['glob-*']);
  });
});
