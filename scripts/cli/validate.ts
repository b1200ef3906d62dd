/** validate: check a plan against the schema and the rules; contacts no host. Its own module so the entry loads only the plan's loader for it. */
import { ExitCode, formatProblem } from '../errors.ts';
import { loadPlan } from '../plan/load.ts';
import { shown, shownLines } from './shown.ts';

export async function validateCommand(file: string): Promise<number> {
  const loaded = loadPlan(file);
  for (const w of loaded.warnings) process.stderr.write(`warning: ${shown(formatProblem(w))}\n`);
  process.stdout.write(shownLines(`${file}: valid plan '${loaded.plan.name}' (${loaded.plan.kind === 'rebalance' ? 'rebalance' : `${loaded.plan.sources?.length ?? 0} source host(s)`}, driver ${loaded.plan.fleet.driver})\n`));
  return ExitCode.ok;
}
