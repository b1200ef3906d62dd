/** Reading virsh's output: pure parsers, one per command the libvirt driver runs. */
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
  if (s.startsWith('paused') || s.startsWith('pmsuspended')) return 'paused';
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

/** `virsh domblklist --details`: file-backed disks (type file, device disk) with their target and path. */
export function disks(text: string): { target: string; path: string }[] {
  return text.split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c[0] === 'file' && c[1] === 'disk' && c[3] && c[3] !== '-').map((c) => ({ target: c[2], path: c[3] }));
}

/**
 * `virsh dumpxml`: the guest's CPU element and model, where the domain names one (a running
 * guest's live XML always does), with the domain's virtualization type.
 */
export function guestCpu(xml: string): { element: string; model: string; virtType: string } | undefined {
  const element = /<cpu[\s>][\s\S]*?<\/cpu>/.exec(xml)?.[0];
  const model = element ? /<model[^>]*>([^<]+)<\/model>/.exec(element)?.[1] : undefined;
  return element && model ? { element, model, virtType: /<domain type='(\w+)'/.exec(xml)?.[1] ?? 'kvm' } : undefined;
}
