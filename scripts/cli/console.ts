/**
 * Terminal output from the event stream: a line per state change, and in a TTY a live block of
 * the migrations in flight (phase, rate, what is left) redrawn below the lines. NO_COLOR honoured.
 */
import { openSync, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { EvacEvent, EventSink } from '../events.ts';
import type { Progress } from '../model.ts';
import { EvacError } from '../errors.ts';
import { shown, shownDeep } from './shown.ts';

export interface ConsoleOptions {
  out: Writable & { isTTY?: boolean };
  color: boolean;
  live: boolean;
}

export function consoleOptions(out: Writable & { isTTY?: boolean }): ConsoleOptions {
  const tty = out.isTTY === true;
  return { out, color: tty && !process.env.NO_COLOR && process.env.TERM !== 'dumb', live: tty && process.env.TERM !== 'dumb' };
}

export function paint(on: boolean) {
  const wrap = (code: number) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { red: wrap(31), green: wrap(32), yellow: wrap(33), blue: wrap(34), magenta: wrap(35), dim: wrap(2), bold: wrap(1) };
}

const MiB = 1024 * 1024;
const fmtBytes = (n: number) => (n >= 1024 * MiB ? `${(n / 1024 / MiB).toFixed(1)} GiB` : `${Math.round(n / MiB)} MiB`);
const stamp = (t: number) => `[${(t / 1000).toFixed(1).padStart(8)}s]`;

export function consoleSink(opts: ConsoleOptions): EventSink & { close(): void } {
  const c = paint(opts.color);
  const inFlight = new Map<string, { label: string; progress?: Progress }>();
  let drawn = 0;
  let lastDraw = 0;
  const erase = () => {
    if (drawn > 0) opts.out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const totals = { moved: 0, left: 0, planned: 0 };
  const draw = () => {
    if (!opts.live || inFlight.size === 0) return;
    const lines = [...inFlight.values()].map(({ label, progress: p }) => {
      let detail = 'starting';
      if (p) {
        const whole = p.sentBytes + p.remainingBytes;
        const pct = whole > 0 ? ` ${Math.min(100, Math.floor((p.sentBytes / whole) * 100))}%` : '';
        const eta = p.rateBps > 0 && p.remainingBytes > 0 ? `, ETA ${Math.ceil(p.remainingBytes / p.rateBps)} s` : '';
        detail = `${p.phase}${p.round !== undefined ? ` round ${p.round + 1}` : ''}${pct}, ${fmtBytes(p.sentBytes)} sent${p.rateBps ? `, ${fmtBytes(p.rateBps)}/s` : ''}${p.remainingBytes ? `, ${fmtBytes(p.remainingBytes)} to go` : ''}${eta}`;
      }
      return `  ${c.dim('▸')} ${label} ${c.dim(detail)}`;
    });
    lines.unshift(c.bold(`  ${inFlight.size} in flight · ${totals.moved} moved, ${totals.left} left${totals.planned ? ` of ${totals.planned}` : ''}`));
    opts.out.write(`${lines.join('\n')}\n`);
    drawn = lines.length;
    lastDraw = Date.now();
  };
  const line = (t: number, text: string) => {
    erase();
    opts.out.write(`${c.dim(stamp(t))} ${text}\n`);
    draw();
  };
  const sink = (raw: EvacEvent) => {
    // Names and details come from plans and hosts: shown safe before our colours go around them.
    const e = raw.kind === 'progress' ? raw : shownDeep(raw);
    switch (e.kind) {
      case 'stage':
        if (e.moves !== undefined) totals.planned = e.moves;
        return line(e.t, c.bold(`${e.stage}${e.detail ? `: ${e.detail}` : ''}`));
      case 'move-start':
        inFlight.set(e.vm, { label: `${e.vm} ${e.method} ${e.source} → ${e.destination}` });
        return line(e.t, `${e.vm} ${(e.method === 'live' ? c.blue : c.magenta)(e.method)} ${e.source} → ${e.destination} started${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
      case 'progress': {
        const f = inFlight.get(shown(e.progress.vm));
        if (f) f.progress = e.progress;
        if (opts.live && Date.now() - lastDraw > 80) {
          erase();
          draw();
        }
        return;
      }
      case 'move-end':
        inFlight.delete(e.vm);
        return line(e.t, e.outcome === 'ok'
          ? `${e.vm} ${c.green('done')} ${e.method} on ${e.destination}, ${fmtBytes(e.bytes)} sent, downtime ${Math.round(e.downtimeMs)} ms`
          : `${e.vm} ${c.red(e.outcome)} (${e.method} to ${e.destination}): ${e.detail}`);
      case 'fallback':
        return line(e.t, `${e.vm} ${c.yellow(`→ ${e.to}`)}: ${e.why}`);
      case 'vm-left':
        return line(e.t, `${e.vm} ${c.red('left')} on ${e.source}: ${e.why}`);
      case 'host-empty':
        return line(e.t, e.empty ? `${e.host} ${c.green(e.scoped ? 'holds none of the plan\'s VMs' : 'is empty')}` : `${e.host} ${c.red(e.scoped ? 'still holds VMs of the plan' : 'is not empty')}: ${e.left.join(', ')}`);
      case 'warning':
        return line(e.t, c.yellow(`warning: ${e.message}`));
      case 'recovered':
        return line(e.t, `${e.vm} ${c.yellow('recovered')} (${e.method} ${e.source} → ${e.destination} was in flight): ${e.action}`);
      case 'vm-done':
        if (e.result.status === 'moved') totals.moved++;
        else if (e.result.status === 'left') totals.left++;
        return;
    }
  };
  return Object.assign(sink, { close: erase });
}

/** --events: the event stream as JSON lines, for other tools. */
export function eventStream(target: string): EventSink {
  let fd: number;
  try {
    fd = target === '-' ? 1 : openSync(target, 'a');
  } catch (e) {
    throw new EvacError(`cannot open ${target} for the events: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'user', [], 'give --events a file in a folder that exists and is writable, or - for stdout');
  }
  let broken = false;
  return (e) => {
    if (broken) return;
    try {
      writeSync(fd, `${JSON.stringify(e)}\n`);
    } catch {
      // A reader that went away (a closed pipe) ends the stream, never the run.
      broken = true;
    }
  };
}
