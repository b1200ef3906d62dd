/** npm run testbed -- up [HOSTS] [GUESTS] | down | status (see testbed.ts). */
import { messageOf } from '../../scripts/errors.ts';
import { down, status, up } from './testbed.ts';

const [cmd, arg, guestArg] = process.argv.slice(2);
try {
  if (cmd === 'up') await up(arg ? Number(arg) : 3, guestArg ? Number(guestArg) : undefined);
  else if (cmd === 'down') console.log((await down()).map((r) => `removed ${r}`).join('\n') || 'nothing to remove');
  else if (cmd === 'status') console.log(await status());
  else {
    console.error('usage: npm run testbed -- up [HOSTS] [GUESTS] | down | status');
    process.exitCode = 2;
  }
} catch (e) {
  console.error(`testbed ${cmd}: ${messageOf(e)}`);
  process.exitCode = 1;
}
