/**
 * Two plans share one simulated fleet (fleet.sim.state_file): one process at a time changes it.
 * A second run while the first holds the file (even paused) is held (exit 5) and changes
 * nothing; run one after the other, each sees the other's moves and the fleet agrees with both
 * reports; plan (read only) never waits.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Report } from '../scripts/report/build.ts';
import { cli, planFile, ROOT, tempDir } from './helpers.ts';

const fleet = (state: string) => ({
  driver: 'sim' as const,
  sim: {
    state_file: state,
    hosts: ['a1', 'a2', 'b1', 'b2', 'c1', 'c2'].map((name) => ({ name, vcpu: 64, memory_mib: 262144, disk_gib: 2000 })),
    vms: [...Array(40).keys()].map((i) => ({ name: `vm-${i}`, host: i < 20 ? 'a1' : 'b1', vcpu: 2, memory_mib: 4096, resident_mib: 3000, dirty_mibps: 20 })),
  },
});

describe('a simulated fleet shared by two plans', () => {
  it('held while another process changes it (even paused); one after the other, both reports agree with the fleet', async () => {
    const dir = tempDir();
    const state = join(dir, 'shared.json');
    const a = planFile({ version: 1, name: 'plan-a', fleet: fleet(state), sources: ['a1'], destinations: { hosts: ['a2', 'c1'] } }, dir);
    const b = planFile({ version: 1, name: 'plan-b', fleet: fleet(state), sources: ['b1'], destinations: { hosts: ['b2', 'c2'] } }, dir);
    const first = spawn(process.execPath, ['dist/evacuator.js', 'run', a, '--reports', dir], { cwd: ROOT, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => first.on('exit', (code) => r(code)));
    for (let i = 0; i < 400 && !existsSync(`${state}.lock`); i++) await new Promise((r) => setTimeout(r, 5));
    first.kill('SIGSTOP');
    try {
      expect(existsSync(`${state}.lock`)).toBe(true);
      const held = await cli('run', b, '--reports', dir);
      expect(held.code, held.stderr).toBe(5);
      expect(held.stderr).toMatch(/state file .*shared\.json is in use by pid \d+/);
      expect(existsSync(join(dir, 'plan-b.journal.jsonl'))).toBe(false);
      // plan only reads: it does not wait for the lock.
      const look = await cli('plan', b, '--json');
      expect(look.code, look.stderr).toBe(0);
    } finally {
      first.kill('SIGCONT');
    }
    expect(await exited).toBe(0);
    const second = await cli('run', b, '--reports', dir);
    expect(second.code, second.stderr).toBe(0);
    const saved = JSON.parse(readFileSync(state, 'utf8')) as { domains: { vm: { name: string; host: string } }[] };
    const where = new Map(saved.domains.map((d) => [d.vm.name, d.vm.host]));
    for (const name of ['plan-a', 'plan-b']) {
      const report = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Report;
      for (const v of report.vms) expect(where.get(v.vm), `${name}: ${v.vm}`).toBe(v.host);
    }
    expect([...where.values()].filter((h) => h === 'a1' || h === 'b1')).toEqual([]);
  });
});
