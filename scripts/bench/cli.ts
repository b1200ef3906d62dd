/**
 * npm run bench:cli — start-up cost of the compiled CLI, timed as whole processes (spawn to exit),
 * against `node -e 0` measured in the same run. The commands take turns, round after round, so a
 * drift in the machine's speed touches them all alike. `--runs N` (default 15) timed rounds after
 * one that is not counted. Prints figures; asserts nothing. Needs dist/ (npm run build).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = 'dist/evacuator.js';
const at = process.argv.indexOf('--runs');
const runs = at > 0 ? Number(process.argv[at + 1]) : 15;
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs takes a whole number from 1 up (got ${process.argv[at + 1]})`);
if (!existsSync(`${ROOT}/${ENTRY}`)) {
  console.error(`${ENTRY} is missing: run npm run build first`);
  process.exit(2);
}

const commands: string[][] = [
  ['node', '-e', '0'],
  ['node', ENTRY, '--help'],
  ['node', ENTRY, '--version'],
  ['node', ENTRY, 'validate', 'plans/example.yaml'],
];

/** Wall seconds of one run of a command, from spawn to exit; its output is read and dropped. */
function once(cmd: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited ${r.status ?? r.signal}: ${String(r.stderr)}`);
  return s;
}

const times = commands.map(() => [] as number[]);
for (let round = 0; round <= runs; round++) {
  commands.forEach((cmd, i) => {
    const s = once(cmd);
    if (round > 0) times[i].push(s);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const base = median(times[0]);
console.log(`Wall seconds of the whole process, ${runs} runs each, in turn (node ${process.version}, ${process.platform}/${process.arch})`);
console.log(`${'command'.padEnd(52)} ${'min'.padStart(7)} ${'median'.padStart(7)} ${'max'.padStart(7)}   median / baseline`);
commands.forEach((cmd, i) => {
  const xs = times[i];
  const f = (x: number) => x.toFixed(3).padStart(7);
  console.log(`${cmd.join(' ').padEnd(52)} ${f(Math.min(...xs))} ${f(median(xs))} ${f(Math.max(...xs))}   ${i === 0 ? '(baseline)' : `${(median(xs) / base).toFixed(2)}x`}`);
});
