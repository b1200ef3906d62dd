/**
 * Malformed and hostile plans, generated: every one either loads or is refused as bad input
 * (an EvacError with exit 2 whose every problem has a file:line:col), never another exception;
 * through the CLI, no stack trace and nothing written. Mutations: a field of the example plan
 * replaced by a value of the wrong type, an absurd number, an impossible date, a hostile
 * string, a deep nesting, or an alias bomb; YAML cut at a random byte.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMap, isSeq, parseDocument, type Node } from 'yaml';
import { EvacError, ExitCode } from '../scripts/errors.ts';
import { loadPlan } from '../scripts/plan/load.ts';
import { cli, tempDir } from './helpers.ts';

const EXAMPLE = readFileSync('plans/example.yaml', 'utf8');

/** Every path (keys and indexes) to a scalar or collection in the example plan. */
function paths(): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (node: unknown, path: (string | number)[]) => {
    out.push(path);
    if (isMap(node)) for (const p of node.items) walk(p.value, [...path, String((p.key as { value?: unknown })?.value ?? p.key)]);
    else if (isSeq(node)) node.items.forEach((v, i) => walk(v, [...path, i]));
  };
  walk(parseDocument(EXAMPLE).contents as Node, []);
  return out.filter((p) => p.length > 0);
}
const PATHS = paths();

const hostileValue = fc.oneof(
  fc.constantFrom(1e308, -1, -1e308, 0, 2 ** 53 + 1, 1.5, Number.MAX_SAFE_INTEGER, 1e12, '1e308', 'NaN', '.inf', '-.inf'),
  fc.constantFrom('2026-02-30T25:61:00Z', '2026-13-01T00:00:00Z', '2026-11-28T06:00:00+99:00', '0000-00-00T00:00Z', ''),
  fc.constantFrom('vm\x1b[2J', 'host\u202eevil', 'a\nb', '::error::x', '*', '[', '\\', 'x'.repeat(300), '../../etc/passwd', '-rf'),
  fc.constantFrom(null, true, [], {}, [[[[[[]]]]]], { a: { b: { c: { d: {} } } } }),
  fc.string(),
  fc.integer(),
  fc.double(),
);

/** The plan with one field replaced, as YAML text. */
function mutate(path: (string | number)[], value: unknown): string {
  const doc = parseDocument(EXAMPLE);
  doc.setIn(path, value === null ? null : doc.createNode(value));
  return doc.toString();
}

function loads(text: string): void {
  const dir = tempDir();
  const file = join(dir, 'p.yaml');
  writeFileSync(file, text);
  try {
    loadPlan(file);
  } catch (e) {
    expect(e, `not a clean refusal: ${(e as Error)?.stack}`).toBeInstanceOf(EvacError);
    const err = e as EvacError;
    expect(err.exitCode).toBe(ExitCode.badInput);
    expect(err.problems.length, err.message).toBeGreaterThan(0);
    for (const p of err.problems) {
      expect(p.line, `${err.message} ${p.message}`).toBeGreaterThanOrEqual(1);
      expect(p.col).toBeGreaterThanOrEqual(1);
    }
  }
}

describe('generated malformed plans', () => {
  it('one field replaced by a hostile value: loads, or exit 2 with a located problem; never another error', () => {
    fc.assert(fc.property(fc.constantFrom(...PATHS), hostileValue, (path, value) => loads(mutate(path, value))), { numRuns: 300 });
  });

  it('the plan cut at any byte, or a byte replaced: the same', () => {
    fc.assert(fc.property(fc.nat(EXAMPLE.length), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, byte, cut) => {
      loads(cut ? EXAMPLE.slice(0, at) : EXAMPLE.slice(0, at) + String.fromCharCode(byte) + EXAMPLE.slice(at + 1));
    }), { numRuns: 200 });
  });

  it('an alias bomb, an absurd number, an impossible date and a control character in a name, through the CLI: exit 2, located, no stack, nothing written', async () => {
    const bomb = `${EXAMPLE}\nx-a: &a [1,1,1,1,1,1,1,1,1,1]\nx-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nx-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nx-d: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n`;
    const cases = [
      bomb,
      mutate(['fleet', 'sim', 'vms', 0, 'memory_mib'], 1e308),
      mutate(['placement', 'effort'], 1e15),
      mutate(['migration', 'completion_timeout_s_per_gib'], 1e12),
      mutate(['migration', 'window_end'], '2026-02-30T25:61:00Z'),
      mutate(['fleet', 'sim', 'vms', 0, 'name'], 'web\x1b]0;pwned\x07'),
      // A line feed in a key or a value: shown, never a line of its own.
      mutate(['placement', 'x\n##[error]forged'], 1),
      mutate(['placement', 'policy'], 'pack\n::error::val'),
    ];
    for (const text of cases) {
      const dir = tempDir();
      const file = join(dir, 'p.yaml');
      writeFileSync(file, text);
      for (const cmd of ['validate', 'run']) {
        const r = await cli(cmd, file, ...(cmd === 'run' ? ['--reports', dir] : []));
        expect(r.code, `${cmd}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));
        expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
        expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
        for (const line of r.stderr.split('\n')) expect(line, 'no line begins a command').not.toMatch(/^\s*(::|##\[)/);
      }
      expect(readdirSync(dir)).toEqual(['p.yaml']);
    }
  });
});

describe('libvirt hosts', () => {
  it('an address or a host name with shell or URI syntax is refused at its line (exit 2)', () => {
    const base = readFileSync('plans/testbed.yaml', 'utf8');
    for (const [path, value] of [
      [['fleet', 'libvirt', 'hosts', 1, 'address'], '10.251.7.12; rm -rf /'],
      [['fleet', 'libvirt', 'hosts', 1, 'address'], '$(reboot)'],
      [['fleet', 'libvirt', 'hosts', 1, 'address'], '-oProxyCommand=x'],
      [['fleet', 'libvirt', 'hosts', 1, 'name'], 'hv2/system?socket=/tmp/x'],
      [['fleet', 'libvirt', 'hosts', 1, 'name'], 'hv2 hv3'],
    ] as const) {
      const doc = parseDocument(base);
      doc.setIn([...path], value);
      const dir = tempDir();
      const file = join(dir, 'p.yaml');
      writeFileSync(file, doc.toString());
      let err: unknown;
      try {
        loadPlan(file);
      } catch (e) {
        err = e;
      }
      expect(err, value).toBeInstanceOf(EvacError);
      expect((err as EvacError).exitCode).toBe(ExitCode.badInput);
      expect((err as EvacError).problems.some((p) => p.path === path.join('.').replace('.1.', '[1].'))).toBe(true);
    }
  });
});
