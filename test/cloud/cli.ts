/**
 * npm run cloud -- up [--computes N --servers M [--page P]] | down | status (root): the OpenStack
 * test cloud. Without options, up builds the small cloud the OpenStack tier uses (cmp1..cmp3,
 * s1..s5); with them, a scale cloud (config.ts, Shape).
 */
import { parseArgs } from 'node:util';
import { messageOf } from '../../scripts/errors.ts';
import { down, status, up } from './cloud.ts';
import { scaleShape, SMALL } from './config.ts';

const USAGE = 'usage: npm run cloud -- up [--computes N --servers M [--page P]] | down | status';
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
