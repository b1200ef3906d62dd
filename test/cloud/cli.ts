/**
 * npm run cloud -- up [--computes N --servers M [--page P]] | down | status | restart-compute HOST
 * (root): the OpenStack test cloud. restart-compute stops a compute's nova-compute, starts it again
 * and waits until Nova sees it up (a rolling maintenance's step in the tests); it prints the new pid. Without options, up builds the small cloud the OpenStack tier uses (cmp1..cmp3,
 * s1..s5); with them, a scale cloud (config.ts, Shape).
 */
import { parseArgs } from 'node:util';
import { messageOf } from '../../scripts/errors.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { down, startCompute, status, stopCompute, up } from './cloud.ts';
import { paths, scaleShape, SMALL } from './config.ts';

const USAGE = 'usage: npm run cloud -- up [--computes N --servers M [--page P]] | down | status | restart-compute HOST';
try {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { computes: { type: 'string' }, servers: { type: 'string' }, page: { type: 'string' } } });
  const [command] = positionals;
  const num = (v: string | undefined, what: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${what}: a whole number from ${min} up, not '${v}'`);
    return n;
  };
  const scale = values.computes !== undefined || values.servers !== undefined;
  const run = {
    up: () => up(scale ? scaleShape(num(values.computes ?? '6', 'computes', 3), num(values.servers ?? '200', 'servers', 2), values.page === undefined ? undefined : num(values.page, 'page', 1)) : SMALL),
    down, status,
    'restart-compute': async () => {
      const host = positionals[1];
      if (!host || !/^cmp\d+$/.test(host)) throw new Error(`restart-compute takes a compute's name (cmp1, cmp2, ...), not '${host}'`);
      stopCompute(host);
      await new Promise((r) => setTimeout(r, 1000));
      await startCompute(host);
      console.log(readFileSync(join(paths.pids, `nova-compute-${host}`), 'utf8').trim());
    },
  }[command ?? ''];
  if (!run) {
    console.error(USAGE);
    process.exit(2);
  }
  await run();
} catch (e) {
  console.error(messageOf(e));
  process.exit(1);
}
