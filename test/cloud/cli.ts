/** npm run cloud -- up | down | status (root): the OpenStack test cloud. */
import { messageOf } from '../../scripts/errors.ts';
import { down, status, up } from './cloud.ts';

const [command] = process.argv.slice(2);
const commands: Record<string, () => Promise<void>> = { up, down, status };
const run = commands[command ?? ''];
if (!run) {
  console.error('usage: npm run cloud -- up | down | status');
  process.exit(2);
}
try {
  await run();
} catch (e) {
  console.error(messageOf(e));
  process.exit(1);
}
