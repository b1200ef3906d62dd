/** The report's JSON Schema (generated from the Report type), enforced on every report before it is written. */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import { EvacError } from '../errors.ts';
import type { Report } from './build.ts';

// Compiled on first use, not at import: `plan` and `clear` load this module but never write a report.
let validate: ValidateFunction | undefined;
function validator(): ValidateFunction {
  validate ??= new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(new URL('../../schemas/report.schema.json', import.meta.url), 'utf8')) as object);
  return validate;
}

/** Problems with a report as `path: message` lines; none when it matches the schema. */
export function reportProblems(report: unknown): string[] {
  const validate = validator();
  if (validate(report)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`);
}

/** A report that does not match its schema is evacuator's bug, never the user's. */
export function assertReport(report: Report): void {
  const problems = reportProblems(report);
  if (problems.length > 0) throw new EvacError(`internal error: the report does not match schemas/report.schema.json: ${problems.join('; ')}`, 'internal');
}
