/**
 * The libvirt driver's data rules without a testbed: the domain XML read by a real parser
 * (names and paths of any characters survive), and disk sharing decided by marker files, run
 * through the real shell scripts against a model of hosts (each host a folder tree of its own;
 * a shared folder is one folder every host that shares it links to). fast-check draws the fleets.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { existing, probeSharing, type Exec } from '../scripts/fleet/libvirt/storage.ts';
import { copyable, domainXml } from '../scripts/fleet/libvirt/virsh.ts';
import { tempDir } from './helpers.ts';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
/** Characters XML 1.0 allows, including the ones shells and parsers trip on. */
const wild = fc.string({ unit: fc.constantFrom(...'ab -_=.,;:\'"&<>$`\\|*?[]{}()!#~%@é漢\u202e'.split('')), minLength: 1, maxLength: 24 });

describe('domain XML through a real parser', () => {
  it('names and disk paths of any characters come back as written; network and block disks have no file; CDs and shared disks are not copied', () => {
    fc.assert(fc.property(wild, fc.array(wild, { minLength: 1, maxLength: 4 }), fc.constantFrom('custom', 'host-model', 'host-passthrough', 'maximum'), (name, files, mode) => {
      const paths = files.map((f, i) => `/var/lib/libvirt/images/${f.replace(/\//g, '_')}${i}`);
      const xml = `<domain type="kvm" id='3'>
  <name>${esc(name)}</name>
  <uuid>0b8c0c1e-2a2e-4f7e-9f0b-6f5b8a2e9d11</uuid>
  <cpu mode='${mode}'>${mode === 'custom' ? '<model fallback="forbid">EPYC-Rome</model><feature policy="require" name="x2apic"/>' : ''}</cpu>
  <devices>
${paths.map((p, i) => `    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file="${esc(p)}" index='${i + 1}'/><backingStore type='file'><source file='${esc(p)}.base'/><backingStore/></backingStore><target dev='vd${String.fromCharCode(97 + i)}' bus='virtio'/></disk>`).join('\n')}
    <disk type='network' device='disk'><source protocol='rbd' name='pool/img'><host name='mon1' port='6789'/></source><target dev='sda'/></disk>
    <disk type='block' device='disk'><source dev='/dev/mapper/lun 1'/><target dev='sdb'/></disk>
    <disk type='file' device='cdrom'><source file='/iso/x y.iso'/><target dev='hdc'/><readonly/></disk>
    <disk type='file' device='disk'><source file='/shared/quorum.img'/><target dev='vdz'/><shareable/></disk>
  </devices>
</domain>`;
      const d = domainXml(xml);
      expect(d.name).toBe(name.trim());
      expect(d.virtType).toBe('kvm');
      expect(d.disks.filter(copyable).map((x) => x.path)).toEqual(paths);
      expect(d.disks.filter(copyable).map((x) => x.backing)).toEqual(paths.map((p) => [`${p}.base`]));
      expect(d.disks.filter((x) => x.type !== 'file').map((x) => x.path)).toEqual([undefined, undefined]);
      expect(d.cpu?.mode).toBe(mode);
      if (mode === 'custom') {
        expect(d.cpu?.model).toBe('EPYC-Rome');
        expect(d.cpu?.element).toMatch(/<cpu mode="custom"><model fallback="forbid">EPYC-Rome<\/model><feature policy="require" name="x2apic"\/><\/cpu>/);
      } else expect(d.cpu?.element).toBeUndefined();
    }), { numRuns: 200 });
  });

  it('a definition that is not a domain is an error, not an empty VM', () => {
    expect(() => domainXml('<network><name>x</name></network>')).toThrow(/not a libvirt domain/);
  });
});

/**
 * Hosts as folder trees under root: host h's path /p is root/h/p. A folder shared by a group of
 * hosts is a link, in each of them, to one folder under root/storage. Commands run through the
 * real sh with every path argument moved into the host's tree (and moved back in the output).
 */
function model(root: string): Exec {
  return async (host, argv) => {
    const base = join(root, host);
    const [cmd, flag, script, arg0, ...args] = argv;
    expect([cmd, flag, arg0]).toEqual(['sh', '-c', 'sh']);
    const moved = args.map((a) => (a.startsWith('/') ? base + a : a));
    const r = spawnSync('sh', ['-c', script, 'sh', ...moved], { encoding: 'utf8' });
    return { code: r.status ?? -1, stdout: r.stdout.split(base).join(''), stderr: r.stderr };
  };
}

describe('disk sharing by marker files (the real scripts, on a model of hosts)', () => {
  it('shared exactly where a folder is the same folder; unknown where the marker could not be written; no marker left behind', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 2, max: 4 }),
      fc.array(fc.record({ folder: fc.constantFrom('/var/lib/libvirt/images', '/srv/vm disks', '/mnt/-odd', '/data/a\'b'), group: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }) }), { minLength: 1, maxLength: 4 }),
      fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      async (n, folders, missing) => {
        const root = tempDir();
        const hosts = Array.from({ length: n }, (_, i) => `h${i}`);
        // Folders by name (a repeated name keeps its first sharing); each group shares one storage folder.
        const byName = new Map(folders.map((f) => [f.folder, f.group]));
        for (const [folder, group] of byName) {
          const storage = join(root, 'storage', folder.replace(/[^\w]/g, '_'));
          mkdirSync(storage, { recursive: true });
          hosts.forEach((h, i) => {
            const at = join(root, h, folder);
            mkdirSync(join(at, '..'), { recursive: true });
            if (group[i] && !(missing[i] && i === 0)) symlinkSync(storage, at);
            else if (!(missing[i] && i === 0)) mkdirSync(at, { recursive: true });
          });
        }
        const owner = hosts[0];
        const result = await probeSharing(model(root), new Map([[owner, [...byName.keys()]]]), hosts);
        for (const [folder, group] of byName) {
          for (const [i, reader] of hosts.entries()) {
            if (i === 0) continue;
            const got = result.get(owner)!.get(folder)!.get(reader);
            const want = missing[0] ? 'unknown' : group[0] && group[i] ? 'shared' : 'local';
            expect(got, `${folder} ${reader}`).toBe(want);
          }
        }
        const leftovers = execFileSync('find', [root, '-name', '.evacuator-probe-*'], { encoding: 'utf8' }).trim();
        expect(leftovers).toBe('');
      },
    ), { numRuns: 60 });
  });

  it('existing() names exactly the paths present, whatever their characters (spaces, newlines, leading dashes, links)', async () => {
    await fc.assert(fc.asyncProperty(fc.uniqueArray(fc.string({ unit: fc.constantFrom(...'a -\n\'"$*'.split('')), minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 6 }), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), async (names, present) => {
      const root = tempDir();
      mkdirSync(join(root, 'h', 'd'), { recursive: true });
      const paths = names.map((x) => `/d/${x}`);
      const made = new Set<string>();
      for (const [i, p] of paths.entries()) {
        if (!present[i]) continue;
        symlinkSync('/nonexistent-target', join(root, 'h', p));
        made.add(p);
      }
      const got = await existing(model(root), 'h', paths);
      expect(got).toEqual(made);
      expect(readdirSync(join(root, 'h', 'd')).length).toBe(made.size);
    }), { numRuns: 60 });
  });
});
