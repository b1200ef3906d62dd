/** Reading virsh's output: pure parsers, one per command the libvirt driver runs. */
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import type { VmState } from '../types.ts';

/** "Key:   value" lines into a map (keys as printed). */
export function fields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return out;
}

const UNITS: Record<string, number> = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };

/** "1.233 MiB" or "16777216" (bytes) into bytes; NaN when unreadable. */
export function bytesOf(value: string | undefined): number {
  const m = /^([\d.]+)\s*([KMGT]iB|B)?/.exec(value ?? '');
  return m ? Number(m[1]) * (UNITS[m[2] ?? 'B'] ?? 1) : NaN;
}

/** virsh domstate / dominfo state into the fleet's states. */
export function stateOf(s: string): VmState {
  if (s.startsWith('running') || s.startsWith('in shutdown') || s.startsWith('blocked')) return 'running';
  if (s.startsWith('pmsuspended')) return 'suspended';
  if (s.startsWith('paused')) return 'paused';
  if (s.startsWith('crashed')) return 'crashed';
  return 'shutoff';
}

/** `virsh capabilities`: the host UUID and CPU model. */
export function capabilities(xml: string): { uuid: string; cpuModel: string } {
  const host = /<host>([\s\S]*?)<\/host>/.exec(xml)?.[1] ?? '';
  return { uuid: /<uuid>([^<]+)<\/uuid>/.exec(host)?.[1] ?? '', cpuModel: /<cpu>[\s\S]*?<model>([^<]+)<\/model>/.exec(host)?.[1] ?? '' };
}

/** `virsh version`: the hypervisor and its version, and the libvirt daemon's. */
export function version(text: string): { type: string; version: string; libvirt?: string } {
  const m = /Running hypervisor:\s*(\S+)\s+(\S+)/.exec(text);
  const lib = /Running against daemon:\s*(\S+)/.exec(text)?.[1] ?? /Using library: libvirt\s+(\S+)/.exec(text)?.[1];
  return { type: m?.[1] ?? 'QEMU', version: m?.[2] ?? '0', ...(lib ? { libvirt: lib } : {}) };
}

/** One disk of a domain, from its XML. */
export interface DomainDisk {
  /** file, block, network, volume, dir, nvme, vhostuser */
  type: string;
  /** disk, cdrom, floppy, lun */
  device: string;
  target: string;
  /** A file disk's path, as the XML says it (spaces and all). */
  path?: string;
  readonly: boolean;
  shareable: boolean;
  /** Files of its backing chain, as the (live) XML lists them. */
  backing: string[];
  /** The driver's cache mode (none, writeback, ...), when the XML names one. */
  cache?: string;
}

/** The guest CPU as the domain asks for it. */
export interface GuestCpu {
  /** custom (a named model), host-model, host-passthrough or maximum. */
  mode: string;
  model?: string;
  /** The <cpu> element as XML, for libvirt's own comparison (custom mode). */
  element?: string;
}

export interface DomainXml {
  name: string;
  uuid: string;
  /** The domain's virtualization type (kvm, qemu). */
  virtType: string;
  cpu?: GuestCpu;
  disks: DomainDisk[];
  /** vCPUs online (the `current` attribute, else the count), as dominfo's CPU(s). */
  vcpu: number;
  /** The memory ceiling (`<memory>`) in MiB, as dominfo's Max memory. */
  memoryMib: number;
}

const ARRAYS = new Set(['disk', 'feature']);
/** Disks whose file a migration copies: file-backed, writable, not a CD or floppy, not shared by several domains. */
export const copyable = (d: DomainDisk): d is DomainDisk & { path: string } =>
  d.type === 'file' && !!d.path && (d.device === 'disk' || d.device === 'lun') && !d.readonly && !d.shareable;
const parser = new XMLParser({
  ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false, parseAttributeValue: false,
  isArray: (name) => ARRAYS.has(name), processEntities: true, htmlEntities: false,
});
const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@', suppressEmptyNode: true });

type Node = Record<string, unknown>;
const text = (v: unknown): string => (typeof v === 'string' ? v : v && typeof v === 'object' && '#text' in v ? String((v as Node)['#text']) : '');

/**
 * A domain's XML read with a real XML parser (fast-xml-parser): its name, UUID, type, guest CPU
 * and disks. Paths keep their spaces and entities; a disk without a file source (network: RBD,
 * iSCSI, gluster; block devices; volumes) has no path: it is not a file to copy.
 */
export function domainXml(xml: string): DomainXml {
  const doc = parser.parse(xml) as Node;
  const dom = doc.domain as Node | undefined;
  if (!dom || typeof dom !== 'object') throw new Error('not a libvirt domain definition');
  const devices = (dom.devices ?? {}) as Node;
  const disks = ((devices.disk ?? []) as Node[]).map((d): DomainDisk => {
    const type = String(d['@type'] ?? 'file');
    const source = (d.source ?? {}) as Node;
    const path = type === 'file' && typeof source['@file'] === 'string' ? (source['@file'] as string) : undefined;
    const backing: string[] = [];
    for (let b = d.backingStore as Node | undefined, depth = 0; b && typeof b === 'object' && depth < 64; b = b.backingStore as Node | undefined, depth++) {
      const f = (b.source as Node | undefined)?.['@file'];
      if (typeof f === 'string') backing.push(f);
    }
    return {
      type, device: String(d['@device'] ?? 'disk'), target: String((d.target as Node | undefined)?.['@dev'] ?? ''),
      ...(path ? { path } : {}), readonly: 'readonly' in d, shareable: 'shareable' in d, backing,
      ...(typeof (d.driver as Node | undefined)?.['@cache'] === 'string' ? { cache: (d.driver as Node)['@cache'] as string } : {}),
    };
  });
  const c = dom.cpu as Node | string | undefined;
  let cpu: GuestCpu | undefined;
  if (c !== undefined) {
    const node = (typeof c === 'object' ? c : {}) as Node;
    const model = text(node.model) || undefined;
    const mode = String(node['@mode'] ?? (model ? 'custom' : 'host-model'));
    cpu = { mode, ...(model ? { model } : {}), ...(mode === 'custom' && model ? { element: builder.build({ cpu: node }) as string } : {}) };
  }
  const vcpuNode = dom.vcpu as Node | string | undefined;
  const vcpu = Number((typeof vcpuNode === 'object' ? vcpuNode?.['@current'] : undefined) ?? text(vcpuNode)) || 1;
  const mem = dom.memory as Node | string | undefined;
  const memoryMib = Number(text(mem)) * (MEMORY_UNITS[String((typeof mem === 'object' ? mem?.['@unit'] : undefined) ?? 'KiB')] ?? NaN) / 2 ** 20;
  return { name: text(dom.name), uuid: text(dom.uuid), virtType: String(dom['@type'] ?? 'kvm'), ...(cpu ? { cpu } : {}), disks, vcpu, memoryMib };
}

/** libvirt's memory units (scaled integers), in bytes. */
const MEMORY_UNITS: Record<string, number> = {
  b: 1, bytes: 1, KB: 1e3, k: 2 ** 10, KiB: 2 ** 10, MB: 1e6, M: 2 ** 20, MiB: 2 ** 20, GB: 1e9, G: 2 ** 30, GiB: 2 ** 30, TB: 1e12, T: 2 ** 40, TiB: 2 ** 40,
};

/** `virsh domstats --raw` state.state numbers, as dominfo names them (stateOf reads either). */
const STATES = ['no state', 'running', 'blocked', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended'];

/** One domain's `virsh domstats --raw --state --block`: its state as dominfo names it, and capacity per disk target. */
export interface DomainStats {
  state: string;
  capacities: Map<string, number>;
}

/**
 * `virsh domstats --raw` output, by domain name (domstats prints names, not UUIDs). A name that
 * appears twice (a name that smuggles a line feed and a fake header, on a libvirt that allowed
 * one) is left out, so its stats are never given to another domain: that domain is read alone.
 */
export function domstats(textOut: string): Map<string, DomainStats> {
  const raw = new Map<string, Map<string, string>>();
  const twice = new Set<string>();
  let cur: Map<string, string> | undefined;
  for (const line of textOut.split('\n')) {
    const head = /^Domain: '(.*)'$/.exec(line);
    if (head) {
      if (raw.has(head[1])) twice.add(head[1]);
      raw.set(head[1], (cur = new Map()));
      continue;
    }
    const kv = /^ {2}([\w.]+)=(.*)$/.exec(line);
    if (kv && cur) cur.set(kv[1], kv[2]);
  }
  const out = new Map<string, DomainStats>();
  for (const [name, f] of raw) {
    const state = STATES[Number(f.get('state.state'))];
    if (twice.has(name) || state === undefined) continue;
    const capacities = new Map<string, number>();
    for (let i = 0, n = Number(f.get('block.count') ?? 0); i < n; i++) {
      const target = f.get(`block.${i}.name`);
      const cap = f.get(`block.${i}.capacity`);
      if (target && cap !== undefined && /^\d+$/.test(cap)) capacities.set(target, Number(cap));
    }
    out.set(name, { state, capacities });
  }
  return out;
}

/** `virsh domblkinfo --all` (bytes): capacity per target. */
export function blockCapacities(table: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of table.split('\n')) {
    const c = line.trim().split(/\s+/);
    if (c.length >= 2 && /^\d+$/.test(c[1])) out.set(c[0], Number(c[1]));
  }
  return out;
}

/** The host's own CPU element from `virsh capabilities` (what a host-passthrough guest needs on a destination). */
export function hostCpuElement(xml: string): string | undefined {
  const host = (parser.parse(xml) as Node).capabilities as Node | undefined;
  const cpu = (host?.host as Node | undefined)?.cpu;
  return cpu && typeof cpu === 'object' ? (builder.build({ cpu }) as string) : undefined;
}
