/** npm run testbed -- up [HOSTS] [GUESTS] [--guests TINY] | down | status (see testbed.ts). */
import { messageOf } from '../../scripts/errors.ts';
import { down, status, up } from './testbed.ts';

const argv = process.argv.slice(2);
// --guests G (or --guests=G): G tiny density guests on hv1 (and no kernel guests unless GUESTS says so).
const at = argv.findIndex((a) => a === '--guests' || a.startsWith('--guests='));
const tiny = at < 0 ? 0 : Number(argv[at].includes('=') ? argv[at].split('=')[1] : argv[at + 1]);
if (at >= 0) argv.splice(at, argv[at].includes('=') ? 1 : 2);
const [cmd, arg, guestArg] = argv;
try {
  if (!Number.isInteger(tiny) || tiny < 0 || tiny > 200) throw new Error(`--guests takes a whole number from 0 to 200, not ${JSON.stringify(tiny)}`);
  if (cmd === 'up') await up(arg ? Number(arg) : 3, guestArg ? Number(guestArg) : undefined, tiny);
  else if (cmd === 'down') console.log((await down()).map((r) => `removed ${r}`).join('\n') || 'nothing to remove');
  else if (cmd === 'status') console.log(await status());
  else {
    console.error('usage: npm run testbed -- up [HOSTS] [GUESTS] [--guests TINY] | down | status');
    process.exitCode = 2;
  }
} catch (e) {
  console.error(`testbed ${cmd}: ${messageOf(e)}`);
  process.exitCode = 1;
}
