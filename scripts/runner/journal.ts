/**
 * The journal: every step of every VM appended as a JSON line next to the reports, each line on
 * disk (fsync; for a real fleet) before the step's side effect starts and again when it ends, so a run killed at
 * any moment can be resumed. It is the event stream plus what a resume needs to know: which run
 * wrote it, what was planned, and how each run ended.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { userError } from '../errors.ts';
import { readInput, writeAll } from '../files.ts';
import type { EvacEvent, Planned, RunEnd, RunStart } from '../events.ts';
import type { Inventory, Vm } from '../fleet/types.ts';
import type { Attempt, VmResult } from '../model.ts';

/** What the journal holds: the event stream, one line per event. */
export type JournalEntry = EvacEvent;

/** A line as stored: the entry, its place in the journal and the wall-clock time it was written. */
export type Line = JournalEntry & { seq: number; at: string };

export const journalPath = (reportsDir: string, planName: string) => join(reportsDir, `${planName}.journal.jsonl`);

/** The environment variable the crash tests use: the process SIGKILLs itself right after line N is on disk. */
export const KILL_AFTER_ENV = 'EVACUATOR_KILL_AFTER';

export class Journal {
  private fd: number | undefined;
  private seq: number;
  /** Last progress mark per VM (phase and round): only changes are journaled. */
  private marks = new Map<string, string>();
  private readonly killAfter: number;
  /** The lines this process wrote (or holds until commit), in order (a resume reads the chain from them without reading the file again). */
  readonly written: Line[] = [];
  /** Lines held until the run first changes the fleet: a run refused before that writes nothing. */
  private pending: Line[] | undefined;

  private readonly durable: boolean;

  /** deferred: hold the lines in memory until commit() (the run's first change to the fleet). durable (default): fsync each line. */
  constructor(readonly path: string, previous: Line[], opts: { deferred?: boolean; durable?: boolean } = {}) {
    this.durable = opts.durable ?? true;
    this.seq = previous.at(-1)?.seq ?? 0;
    this.killAfter = Number(process.env[KILL_AFTER_ENV] ?? 0);
    if (opts.deferred) this.pending = [];
    else this.open();
  }

  private open(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    // A last line cut short by a kill (a long line takes a while to write) is not a step that
    // happened (readJournal drops it): cut it off, so this run's first line starts a line.
    cutTornTail(this.path);
    this.fd = openSync(this.path, 'a');
  }

  /** Write the held lines and every later one as it comes (idempotent). */
  commit(): void {
    if (!this.pending) return;
    const held = this.pending;
    this.pending = undefined;
    this.open();
    for (const line of held) this.put(line);
  }

  write(entry: JournalEntry): void {
    if (entry.kind === 'progress') {
      const p = entry.progress;
      const mark = `${p.phase}:${p.round ?? ''}`;
      if (this.marks.get(p.vm) === mark) return;
      this.marks.set(p.vm, mark);
    }
    if (entry.kind === 'move-end') this.marks.delete(entry.vm);
    const line: Line = { ...entry, seq: ++this.seq, at: 'at' in entry ? entry.at : new Date().toISOString() };
    this.written.push(line);
    if (this.pending) this.pending.push(line);
    else this.put(line);
  }

  private put(line: Line): void {
    writeAll(this.fd!, Buffer.from(`${JSON.stringify(line)}\n`));
    if (this.durable) fsyncSync(this.fd!);
    if (this.killAfter > 0 && line.seq >= this.killAfter) process.kill(process.pid, 'SIGKILL');
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Cut a file back to its last newline (reading backwards, so a long journal is not read whole). */
export function cutTornTail(path: string): void {
  if (!existsSync(path)) return;
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      readSync(fd, chunk, 0, end - start, start);
      const at = chunk.subarray(0, end - start).lastIndexOf(0x0a);
      if (at >= 0) {
        if (start + at + 1 < size) ftruncateSync(fd, start + at + 1);
        return;
      }
      end = start;
    }
    if (size > 0) ftruncateSync(fd, 0);
  } finally {
    closeSync(fd);
  }
}

/** The journal's lines; a last line cut short by a kill is dropped. */
export function readJournal(path: string): Line[] {
  if (!existsSync(path)) return [];
  const lines: Line[] = [];
  const text = readInput(path, 'journal', 'give the journal a run wrote: reports/<plan name>.journal.jsonl').split('\n').filter((l) => l.trim());
  for (const [i, l] of text.entries()) {
    try {
      lines.push(JSON.parse(l) as Line);
    } catch (e) {
      if (i === text.length - 1) break;
      throw userError(`${path}:${i + 1}: not a journal line (${(e as Error).message})`, [],
        'the journal is damaged before its last line; move it aside to start afresh (a run it records cannot be resumed then), or restore it');
    }
  }
  return lines;
}

/** An attempt whose start is journaled but whose end is not: the process died during it. */
export interface InFlight {
  vm: Vm;
  destination: string;
  method: 'live' | 'cold';
  attempt: number;
  start: number;
}

/** What the journal says about the current evacuation: the runs since the last fresh start. */
export interface Chain {
  runs: (RunStart & { seq: number; at: string; ended: boolean })[];
  /** Attempts per VM, in order. */
  attempts: Map<string, Attempt[]>;
  /** The last result per VM: its vm-done line, or else its last attempt's end. */
  results: Map<string, VmResult>;
  inFlight: InFlight[];
  /** The last planned destination per VM. */
  planned: Map<string, string>;
  /** The clock at the last line (ms since the chain began). */
  lastT: number;
  /** The first run's view of the fleet, and the last plan's blueprint. */
  before?: Inventory;
  lastPlanned?: Planned;
  /** How the last run ended, if it did. */
  end?: RunEnd;
  /** When the last line was written. */
  lastAt: string;
}

export function chainOf(lines: Line[]): Chain | undefined {
  const first = lines.findLastIndex((l) => l.kind === 'run-start' && !l.resumed);
  if (first < 0) return undefined;
  const chain: Chain = { runs: [], attempts: new Map(), results: new Map(), inFlight: [], planned: new Map(), lastT: 0, lastAt: lines[first].at };
  const vms = new Map<string, Vm>();
  const open = new Map<string, InFlight>();
  for (const l of lines.slice(first)) {
    if ('t' in l && l.t !== undefined) chain.lastT = Math.max(chain.lastT, l.t);
    chain.lastAt = l.at;
    switch (l.kind) {
      case 'run-start':
        // Attempts the previous process never finished stay open until a resume settles them.
        chain.runs.push({ ...l, ended: false });
        delete chain.end;
        break;
      case 'run-end':
        chain.runs.at(-1)!.ended = true;
        chain.end = l;
        break;
      case 'planned':
        chain.before ??= l.inventory;
        chain.lastPlanned = l;
        for (const v of l.vms) vms.set(v.name, v);
        for (const m of l.moves) chain.planned.set(m.vm, m.destination);
        break;
      case 'move-start':
        open.set(l.vm, { vm: vms.get(l.vm) ?? unknownVm(l.vm, l.source), destination: l.destination, method: l.method, attempt: l.attempt, start: l.t });
        chain.planned.set(l.vm, l.destination);
        break;
      case 'move-end': {
        open.delete(l.vm);
        const list = chain.attempts.get(l.vm) ?? [];
        list.push({
          method: l.method, destination: l.destination, start: l.start, end: l.t, outcome: l.outcome, detail: l.detail,
          bytes: l.bytes, downtimeMs: l.downtimeMs, foundOn: l.foundOn, ...(l.failedHost ? { failedHost: l.failedHost } : {}),
        });
        chain.attempts.set(l.vm, list);
        // Until its vm-done line, the attempt's end is the VM's result (a kill can fall between the two).
        const moved = l.outcome === 'ok';
        chain.results.set(l.vm, {
          vm: l.vm, source: l.source, plannedDestination: l.destination, host: l.foundOn, status: moved ? 'moved' : 'left',
          method: moved ? l.method : 'none', reason: moved ? `${l.method} migration done` : l.detail, attempts: [...list],
        });
        break;
      }
      case 'vm-done':
        chain.results.set(l.result.vm, l.result);
        break;
      default:
        break;
    }
  }
  chain.inFlight = [...open.values()];
  return chain;
}

/** A VM the journal names in a move but never described (a journal cut before its plan): enough to look it up. */
function unknownVm(name: string, host: string): Vm {
  return { name, uuid: name, host, state: 'running', resources: {}, storage: 'shared', cpuModel: 'qemu64' };
}

/** The controller's identity and whether the process that wrote a run is still alive (only knowable on the same machine). */
export { controller, processStart, stillRunning } from '../process.ts';
