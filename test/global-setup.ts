/**
 * The fast suite runs with its own TMPDIR, and fails if anything is left in it at the end: every
 * test, and every CLI process a test starts, must clean up the temporary folders it makes.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'evacuator-tests-'));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    const left = readdirSync(dir);
    rmSync(dir, { recursive: true, force: true });
    if (left.length > 0) failRun(`the tests left ${left.length} temporary file(s) or folder(s) behind: ${left.slice(0, 10).join(', ')}${left.length > 10 ? ', ...' : ''}`);
  };
}

/** vitest ignores an error thrown at teardown for its exit code: say it, and make the process fail. */
function failRun(message: string): void {
  process.stderr.write(`\n${message}\n`);
  process.exitCode = 1;
  process.on('exit', () => {
    process.exitCode = 1;
  });
}
