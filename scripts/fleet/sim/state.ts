/**
 * The simulated fleet's state file: a snapshot line, then one line per change (the domains and
 * hosts it touched, the clock, the hosts that are down). A change costs what it touched, not the
 * whole fleet: a region of 40,000 VMs is a 13 MB snapshot, a migration a line of a few hundred
 * bytes. The file is compacted (rewritten as one snapshot, to a temporary name renamed over it,
 * so a kill never leaves half a file) when its change lines outgrow the snapshot, and when the
 * process that wrote them closes the fleet.
 *
 * A line is one write of its own; a process killed in the middle of one leaves a last line
 * without its newline: readers ignore it, and the next writer cuts it off before it appends.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { userError } from '../../errors.ts';
import { readInput, writeAll } from '../../files.ts';
import { pidAlive } from '../../process.ts';
import type { Host, Vm } from '../types.ts';

export interface SimDomain {
  vm: Vm;
  residentBytes: number;
  dirtyBps: number;
  ignoresShutdown: boolean;
  /** A cold migration's copy on its destination: disks being copied, or defined and running there. */
  copy?: { host: string; phase: 'copying' | 'running' };
}

export interface SavedFleet {
  version: 1;
  /** The clock when the state was last changed, ms. */
  t: number;
  hosts: Host[];
  domains: SimDomain[];
  down: string[];
}

/** One change line: what it touched, whole, and the clock. */
export interface Change {
  t: number;
  domains?: SimDomain[];
  hosts?: Host[];
  down?: string[];
}

const HINT = 'point fleet.sim.state_file at a new file (evacuator writes it) or at one an earlier run wrote';

/** The fleet a state file holds now: its snapshot with every complete change line applied, and how many bytes of the file those are. */
export function readState(path: string): { saved: SavedFleet; bytes: number; snapshotBytes: number; changes: number } {
  const text = readInput(path, 'simulated fleet state', 'a sim state_file must be a fleet state evacuator wrote');
  const bad = () => userError(`${path} is not a simulated fleet state evacuator wrote`, [], HINT);
  let end = text.indexOf('\n');
  const first = end < 0 ? text : text.slice(0, end);
  let saved: SavedFleet;
  try {
    saved = JSON.parse(first) as SavedFleet;
  } catch {
    throw bad();
  }
  if (!saved || !Array.isArray(saved.hosts) || !Array.isArray(saved.domains) || !Array.isArray(saved.down) || typeof saved.t !== 'number') throw bad();
  // A file of the first format (one snapshot, no newline): not appendable (bytes 0), rewritten at the first change.
  if (end < 0) return { saved, bytes: 0, snapshotBytes: 0, changes: 0 };
  const snapshotBytes = Buffer.byteLength(first) + 1;
  const domains = new Map(saved.domains.map((d) => [d.vm.name, d]));
  const hosts = new Map(saved.hosts.map((h) => [h.name, h]));
  let changes = 0;
  for (;;) {
    const start = end + 1;
    if (start >= text.length) break;
    const next = text.indexOf('\n', start);
    // The last line of a writer killed in the middle of it: not a change that happened.
    if (next < 0) break;
    let c: Change;
    try {
      c = JSON.parse(text.slice(start, next)) as Change;
    } catch {
      throw bad();
    }
    if (!c || typeof c.t !== 'number') throw bad();
    for (const d of c.domains ?? []) domains.set(d.vm.name, d);
    for (const h of c.hosts ?? []) hosts.set(h.name, h);
    if (c.down) saved.down = c.down;
    saved.t = Math.max(saved.t, c.t);
    changes++;
    end = next;
  }
  saved.domains = [...domains.values()];
  saved.hosts = [...hosts.values()];
  return { saved, bytes: changes === 0 ? snapshotBytes : Buffer.byteLength(text.slice(0, end + 1)), snapshotBytes, changes };
}

/** Appends change lines to a state file this process holds the lock of, and rewrites it whole when due. */
export class StateWriter {
  private fd: number | undefined;
  private snapshotBytes = 0;
  private appended = 0;

  constructor(private readonly path: string) {}

  /** Start from the file as it is: cut a torn last line off, then append after it. */
  adopt(bytes: number, snapshotBytes: number): void {
    this.close();
    truncateSync(this.path, bytes);
    this.fd = openSync(this.path, 'a');
    this.snapshotBytes = snapshotBytes;
    this.appended = Math.max(0, bytes - snapshotBytes);
  }

  get open(): boolean {
    return this.fd !== undefined;
  }

  /** Changes written since the last snapshot. */
  get pending(): boolean {
    return this.appended > 0;
  }

  /** Write the whole fleet as one line: a temporary name of this process's own, renamed over the file. */
  snapshot(saved: SavedFleet): void {
    this.close();
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
    const line = `${JSON.stringify(saved)}\n`;
    writeFileSync(tmp, line);
    renameSync(tmp, this.path);
    this.fd = openSync(this.path, 'a');
    this.snapshotBytes = Buffer.byteLength(line);
    this.appended = 0;
  }

  /** One change, one line, one write. Returns whether the file is due for compaction (its changes outgrew its snapshot). */
  append(change: Change): boolean {
    if (this.fd === undefined) throw new Error('state file not open');
    const line = Buffer.from(`${JSON.stringify(change)}\n`);
    writeAll(this.fd, line);
    this.appended += line.length;
    return this.appended > Math.max(this.snapshotBytes, 1 << 20);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Remove `<state>.<pid>.<hex>.tmp` files whose writer (pid) no longer runs: a snapshot cut short by a kill. */
export function removeDeadTemporaries(path: string): void {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length)) : null;
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    rmSync(join(dir, name), { force: true });
  }
}
