/** One name per VM: uniqueNames over random fleets whose names collide on purpose (fast-check). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { uniqueNames } from '../scripts/fleet/names.ts';

describe('uniqueNames', () => {
  it('gives every VM its own name; a name no other VM has is kept; a derived name never meets another VM\'s (a server named dup@<id> beside two named dup)', () => {
    fc.assert(fc.property(fc.array(fc.record({ base: fc.constantFrom('dup', 'web', 'x'), id: fc.uuid(), host: fc.constantFrom('h1', 'h2'), forge: fc.nat(4) }), { maxLength: 30 }), (raw) => {
      // Some names forge another's derived name: base@<id8 of an earlier item>, or the whole id.
      const items = raw.map((r, i) => ({
        name: r.forge === 1 && i > 0 ? `${raw[i - 1].base}@${raw[i - 1].id.slice(0, 8)}` : r.forge === 2 && i > 0 ? `${raw[i - 1].base}@${raw[i - 1].id}` : r.base,
        id: r.forge === 3 && i > 0 ? raw[i - 1].id : r.id,
        host: r.host,
      }));
      const out = uniqueNames(items);
      const names = [...out.values()];
      expect(new Set(names).size).toBe(items.length);
      const count = new Map<string, number>();
      for (const i of items) count.set(i.name, (count.get(i.name) ?? 0) + 1);
      for (const i of items) {
        // Kept unless another VM's derived name could meet it (its name is that one's plus @...).
        const forged = items.some((o) => o !== i && i.name.startsWith(`${o.name}@`));
        if (count.get(i.name) === 1 && !forged) expect(out.get(i)).toBe(i.name);
        expect(out.get(i)!.startsWith(i.name)).toBe(true);
      }
    }), { numRuns: 500 });
  });

  it('the attack case: two servers named dup and one named dup@<the first one\'s id prefix> are three names', () => {
    const a = { name: 'dup', id: 'df748358-0000-0000-0000-000000000001', host: 'cmp1' };
    const b = { name: 'dup', id: 'bff7b5ab-0000-0000-0000-000000000002', host: 'cmp1' };
    const c = { name: 'dup@df748358', id: '00096205-0000-0000-0000-000000000003', host: 'cmp2' };
    const out = uniqueNames([a, b, c]);
    expect(new Set(out.values()).size).toBe(3);
    expect(out.get(b)).toBe('dup@bff7b5ab');
  });
});
