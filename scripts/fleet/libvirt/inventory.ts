/**
 * Reading every domain of a host in one remote command, whatever their number: the UUIDs
 * (`virsh list`), the guests with a managed save, `virsh domstats --raw` for every domain's
 * state and disk capacities, then each domain's XML by UUID, each section after a random
 * separator no domain's data can forge. The script takes no value but the separator; the UUIDs
 * it loops over are the host's own answer, used as quoted data, never as script text.
 *
 * A domain is its own failure, never the host's: one that is gone between the list and its
 * read is left out; one the batch could not read whole (its stats missing, renamed meanwhile,
 * a name domstats shows twice) is read again alone (dominfo, domblkinfo, dumpxml: the
 * per-domain path, also `perDomain` for measuring against it); one that still exists but gives
 * no definition is reported `busy` (never moved, and a source holding it is not empty).
 */
import type { Vm } from '../types.ts';
import * as virsh from './virsh.ts';

/** What `virsh list --uuid` prints for a domain. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One domain as the inventory read it. */
export interface DomainRead {
  vm: Vm;
  disks: virsh.DomainDisk[];
  /** Its definition (undefined for a domain that gave none: `busy`). */
  xml?: virsh.DomainXml;
}

/** sh -c script: $1 the separator. Exits 3 when libvirtd cannot list its domains (the host's failure). */
const BATCH = [
  'set -f; s=$1',
  'l=$(virsh -c qemu:///system list --all --uuid) || exit 3',
  'm=$(virsh -c qemu:///system list --all --uuid --with-managed-save) || exit 3',
  'printf "%s list\\n%s\\n%s saved\\n%s\\n%s stats\\n" "$s" "$l" "$s" "$m" "$s"',
  'virsh -c qemu:///system domstats --raw --state --block 2>/dev/null',
  'for u in $l; do printf "\\n%s xml %s\\n" "$s" "$u"; virsh -c qemu:///system dumpxml --domain "$u" 2>/dev/null; done',
  'exit 0',
].join('\n');

/** The batch read of a host's domains, as an argv for SshPool.exec. */
export function batchCommand(sep: string): string[] {
  return ['sh', '-c', BATCH, 'sh', sep];
}

/** sh -c script: $1 the separator, then UUIDs; per domain its dominfo, domblkinfo --all and XML. */
const EACH = 's=$1; shift; for u do printf "\\n%s dom %s\\n" "$s" "$u"; virsh -c qemu:///system dominfo --domain "$u" 2>/dev/null; '
  + 'printf "%s blk\\n" "$s"; virsh -c qemu:///system domblkinfo --domain "$u" --all 2>/dev/null; '
  + 'printf "%s xml\\n" "$s"; virsh -c qemu:///system dumpxml --domain "$u" 2>/dev/null; done; exit 0';

/** The per-domain read of these domains (three virsh calls each), as an argv for SshPool.exec. */
export function eachCommand(sep: string, uuids: string[]): string[] {
  return ['sh', '-c', EACH, 'sh', sep, ...uuids];
}

/** Sections of a batch's output after `sep `: [header, body]. */
function sections(out: string, sep: string): [string, string][] {
  return `\n${out}`.split(`\n${sep} `).slice(1).map((part) => {
    const nl = part.indexOf('\n');
    return nl < 0 ? [part, ''] : [part.slice(0, nl), part.slice(nl + 1)];
  });
}

const parseXml = (text: string): virsh.DomainXml | undefined => {
  if (!text.trim()) return undefined;
  try {
    return virsh.domainXml(text);
  } catch {
    return undefined;
  }
};

/** A Vm from what was read of it. */
function vmOf(host: string, uuid: string, hostCpuModel: string, d: virsh.DomainXml, stateText: string, managedSave: boolean,
  capacities: Map<string, number>, vcpu: number, memoryMib: number): DomainRead {
  const diskBytes = d.disks.filter(virsh.copyable).reduce((a, x) => a + (capacities.get(x.target) ?? 0), 0);
  let state = virsh.stateOf(stateText);
  // A shut-off domain with a managed save image holds a guest's memory: moving its definition would lose it.
  if (state === 'shutoff' && managedSave) state = 'suspended';
  const cpuModel = !d.cpu ? 'qemu64' : d.cpu.mode === 'custom' ? d.cpu.model ?? 'qemu64' : hostCpuModel;
  return {
    disks: d.disks, xml: d,
    vm: { name: d.name || uuid, uuid, host, state, resources: { vcpu, memory_mib: memoryMib, disk_gib: diskBytes / 2 ** 30 }, storage: 'local', cpuModel },
  };
}

/**
 * The batch's output: the domains read whole, and the listed UUIDs to read again alone. A
 * domain's stats are taken only under the name its own XML (read by UUID) gives, and only when
 * every copyable disk has a capacity; otherwise it is read again alone.
 */
export function parseBatch(out: string, sep: string, host: string, hostCpuModel: string): { read: DomainRead[]; again: string[] } {
  let listed: string[] = [];
  let saved = new Set<string>();
  let stats = new Map<string, virsh.DomainStats>();
  const xml = new Map<string, string>();
  let gotList = false;
  for (const [head, body] of sections(out, sep)) {
    if (head === 'list') gotList = true;
    if (head === 'list') listed = body.split('\n').map((l) => l.trim()).filter((u) => UUID.test(u));
    else if (head === 'saved') saved = new Set(body.split('\n').map((l) => l.trim()).filter((u) => UUID.test(u)));
    else if (head === 'stats') stats = virsh.domstats(body);
    else if (head.startsWith('xml ')) xml.set(head.slice(4), body);
  }
  // No list is no answer, never an empty host.
  if (!gotList) throw new Error(`${host}: the domain list is missing from the batch's output`);
  const read: DomainRead[] = [];
  const again: string[] = [];
  for (const uuid of new Set(listed)) {
    const d = parseXml(xml.get(uuid) ?? '');
    const st = d ? stats.get(d.name) : undefined;
    const complete = d && st && d.uuid.toLowerCase() === uuid.toLowerCase() && !/[\r\n]/.test(d.name)
      && d.disks.filter(virsh.copyable).every((x) => st.capacities.has(x.target));
    if (d && st && complete) read.push(vmOf(host, uuid, hostCpuModel, d, st.state, saved.has(uuid), st.capacities, d.vcpu, d.memoryMib));
    else again.push(uuid);
  }
  return { read, again };
}

/**
 * The per-domain read's output. A domain whose dominfo found nothing is gone; one that answered
 * dominfo but gave no definition is `busy`: it exists, so it stays, and no source holding it counts as empty.
 */
export function parseEach(out: string, sep: string, host: string, hostCpuModel: string): DomainRead[] {
  const result: DomainRead[] = [];
  for (const chunk of out.split(`\n${sep} dom `).slice(1)) {
    const uuid = chunk.slice(0, chunk.indexOf('\n'));
    const part = chunk.slice(uuid.length + 1);
    // A command that printed nothing leaves its section empty: the next header then follows without a line feed of its own.
    const [info, rest = ''] = `\n${part}`.split(`\n${sep} blk\n`);
    const [blk, xmlText = ''] = `\n${rest}`.split(`\n${sep} xml\n`);
    const f = virsh.fields(info);
    if (!f.get('State')) continue; // gone between the list and now
    const vcpu = Number(f.get('CPU(s)') ?? 1);
    const memoryMib = virsh.bytesOf(f.get('Max memory')) / 2 ** 20;
    const d = parseXml(xmlText);
    if (!d) {
      result.push({ disks: [], vm: { name: f.get('Name') || uuid, uuid, host, state: 'busy', resources: { vcpu, memory_mib: memoryMib, disk_gib: 0 }, storage: 'shared', cpuModel: 'qemu64' } });
      continue;
    }
    result.push(vmOf(host, uuid, hostCpuModel, d, f.get('State') ?? '', f.get('Managed save') === 'yes', virsh.blockCapacities(blk), vcpu, memoryMib));
  }
  return result;
}
