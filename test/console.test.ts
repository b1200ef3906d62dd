/**
 * The terminal: in a TTY a live block (migrations in flight with percent, rate and ETA; totals)
 * redrawn under the lines, colour unless NO_COLOR; plain lines through a pipe. The CLI is run in
 * a real pseudo-terminal (util-linux script).
 */

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { $, quote } from 'zx';
import { consoleSink } from '../scripts/cli/console.ts';
import { ROOT, tempDir } from './helpers.ts';

const ESC = '\x1b';
const colour = /\x1b\[3\dm/;
const MiB = 1024 * 1024;

/** The example plan through the CLI, its stdout a pipe or (tty) a pseudo-terminal. */
async function example(tty: boolean, env: Record<string, string | undefined>) {
  const reports = tempDir('evac-tty-');
  const cmd = ['node', 'dist/evacuator.js', 'run', 'plans/example.yaml', '--reports', reports];
  const base = { ...process.env, TERM: 'xterm-256color', ...env };
  const opts = { cwd: ROOT, nothrow: true, quiet: true, env: base };
  // script runs the command in a new pseudo-terminal through a shell: each word quoted for it.
  const out = tty ? await $(opts)`script -qfec ${cmd.map((w) => quote(w)).join(' ')} /dev/null` : await $(opts)`${cmd}`;
  return { code: out.exitCode, text: out.stdout };
}

describe('terminal output', () => {
  it('in a pseudo-terminal: coloured lines and a live block of the moves in flight with totals', async () => {
    const { code, text } = await example(true, { NO_COLOR: undefined });
    expect(code).toBe(3);
    expect(text).toMatch(colour);
    expect(text).toMatch(/\d+ in flight · \d+ moved, \d+ left of \d+/);
    // A move in flight with its phase, round, percent, rate and ETA (the example's analytics-1).
    expect(text.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/analytics-1 live hv-a1 → hv-b\d+ memory round \d+ \d+%, [\d.]+ GiB sent, \d+ MiB\/s, [\d.]+ GiB to go, ETA \d+ s/);
    expect(text).toContain(`${ESC}[0J`); // the block erased before the next line
  }, 60_000);

  it('NO_COLOR in a pseudo-terminal: the live block stays, the colours go', async () => {
    const { text } = await example(true, { NO_COLOR: '1' });
    expect(text).not.toMatch(colour);
    expect(text).toMatch(/\d+ in flight · /);
  }, 60_000);

  it('through a pipe: plain lines, no escape codes, no live block', async () => {
    const { code, text } = await example(false, { NO_COLOR: undefined });
    expect(code).toBe(3);
    expect(text).not.toContain(ESC);
    expect(text).not.toMatch(/in flight ·/);
    expect(text).toMatch(/analytics-1 → cold/);
  }, 60_000);

  it('the live block shows percent, rate, what is left and the ETA of a move in flight', () => {
    let written = '';
    const out = Object.assign(new Writable({ write: (chunk, _enc, done) => { written += String(chunk); done(); } }), { isTTY: true });
    const sink = consoleSink({ out, color: false, live: true });
    sink({ kind: 'stage', t: 0, stage: 'migrate', moves: 3 });
    sink({ kind: 'move-start', t: 0, vm: 'web-1', source: 'hv-a', destination: 'hv-b', method: 'live', attempt: 1 });
    sink({ kind: 'progress', t: 1000, progress: { vm: 'web-1', phase: 'memory', round: 1, sentBytes: 420 * MiB, remainingBytes: 580 * MiB, rateBps: 100 * MiB } });
    sink({ kind: 'warning', t: 1500, message: 'a line that redraws the block' });
    const block = written.slice(written.lastIndexOf('a line that redraws the block'));
    expect(block).toContain('1 in flight · 0 moved, 0 left of 3');
    expect(block).toContain('web-1 live hv-a → hv-b memory round 2 42%, 420 MiB sent, 100 MiB/s, 580 MiB to go, ETA 6 s');
    sink({ kind: 'move-end', t: 9000, vm: 'web-1', source: 'hv-a', destination: 'hv-b', method: 'live', attempt: 1, outcome: 'ok', detail: 'live migration done', bytes: 1000 * MiB, downtimeMs: 80, start: 0, foundOn: 'hv-b' });
    // The block (header and one move) erased, and not drawn again with nothing in flight.
    const after = written.slice(written.lastIndexOf('580 MiB to go'));
    expect(after).toContain(`${ESC}[2A${ESC}[0J`);
    expect(after.slice(after.indexOf('web-1 done'))).not.toContain('in flight');
    expect(written).not.toMatch(colour);
  });
});
