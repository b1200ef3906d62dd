/** Reading what a person names on the command line: a regular file of a sane size, or a clear refusal (exit 2). */
import { readFileSync, statSync, writeSync } from 'node:fs';
import { userError } from './errors.ts';

/** A plan of the schema's largest fleet, a journal of a region-scale run or a blueprint stays far under this. */
export const MAX_INPUT_BYTES = 256 * 2 ** 20;

/** The text of file, or an EvacError (bad input) naming what is wrong with it; hint says what to give instead. */
export function readInput(file: string, what: string, hint: string, maxBytes = MAX_INPUT_BYTES): string {
  try {
    const st = statSync(file);
    // A device, a fifo or a folder would be read forever or not at all (/dev/zero fills memory).
    if (!st.isFile()) throw userError(`${what} ${file} is not a regular file`, [], hint);
    if (st.size > maxBytes) throw userError(`${what} ${file} is ${Math.round(st.size / 2 ** 20)} MiB; at most ${maxBytes / 2 ** 20} MiB is read`, [], hint);
    return readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof Error && e.name === 'EvacError') throw e;
    throw userError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, [], hint);
  }
}

/** A JSON file a person names: its value, or an EvacError (bad input) saying it is not JSON and what to give instead. */
export function readJson(file: string, what: string, hint: string): unknown {
  const text = readInput(file, what, hint);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw userError(`${what} ${file} is not JSON: ${(e as Error).message}`, [], hint);
  }
}

/** Write all of bytes to fd: a write may take less than all of a long line (a journal's, a state file's). */
export function writeAll(fd: number, bytes: Buffer): void {
  for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
}
