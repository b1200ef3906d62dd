/** Reads a plan file: YAML with positions, the version first, the schema, then the semantic rules. */
import { createHash } from 'node:crypto';
import { LineCounter, parseDocument, visit, type Document } from 'yaml';
import { userError, type Problem } from '../errors.ts';
import { readInput } from '../files.ts';
import type { EvacuationPlan } from './plan-types.ts';
import { Positions, showPath, type FieldPath } from './positions.ts';
import { checkRules } from './rules.ts';
import { checkSchema } from './schema.ts';

export const PLAN_VERSION = 1;

export interface LoadedPlan {
  file: string;
  /** sha256 of the file's bytes. */
  digest: string;
  plan: EvacuationPlan;
  warnings: Problem[];
  /** A problem found later (against the fleet) at a field of this plan, with its file:line:col. */
  problemAt?: (path: (string | number)[], message: string) => Problem;
}

/** Load and check a plan; throws one EvacError listing every problem found. */
export function loadPlan(file: string): LoadedPlan {
  const text = readInput(file, 'plan', 'check the path; example plans are in plans/');
  const digest = `sha256:${createHash('sha256').update(text).digest('hex')}`;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
      return { file, line: pos.line, col: pos.col, path: '', message: `YAML: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}` };
    });
    throw userError(`${file} is not valid YAML`, problems);
  }
  const at = new Positions(doc, lines);
  const problem = (path: FieldPath, message: string, key?: string): Problem => ({ file, ...at.at(path, key), path: showPath(path), message });
  let data: unknown;
  try {
    // yaml refuses documents whose aliases expand past a bound (a "billion laughs" bomb).
    data = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (e) {
    const alias = firstAlias(doc);
    const pos = alias ? lines.linePos(alias) : { line: 1, col: 1 };
    throw userError(`${file} is not a plan`, [{ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${e instanceof Error ? e.message : String(e)}: aliases expand to too much; write the values out` }]);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw userError(`${file} is not a plan`, [problem([], 'a plan is a YAML mapping with version, name, fleet and sources')]);
  }
  const version = (data as { version?: unknown }).version;
  if (version !== PLAN_VERSION) {
    const message = version === undefined
      ? `missing; add 'version: ${PLAN_VERSION}' at the top of the plan`
      : `plan format version ${JSON.stringify(version)} is not supported; this evacuator reads version ${PLAN_VERSION}`;
    throw userError(`${file}: unsupported plan version`, [problem(['version'], message)]);
  }
  const schemaProblems = checkSchema(data).map((p) => problem(p.path, p.message, p.key));
  if (schemaProblems.length > 0) {
    throw userError(`${file} does not match schemas/plan.schema.json`, schemaProblems);
  }
  const plan = data as EvacuationPlan;
  const rules = checkRules(plan);
  const errors = rules.filter((r) => r.severity === 'error').map((r) => problem(r.path, r.message));
  const warnings = rules.filter((r) => r.severity === 'warning').map((r) => problem(r.path, r.message));
  if (errors.length > 0) throw userError(`${file} has ${errors.length} error(s)`, [...errors, ...warnings]);
  return { file, digest, plan, warnings, problemAt: (path, message) => problem(path as FieldPath, message) };
}

/** Where the document's first alias is (an offset), if it has one. */
function firstAlias(doc: Document): number | undefined {
  let at: number | undefined;
  visit(doc, { Alias(_, node) {
    at = node.range?.[0];
    return visit.BREAK;
  } });
  return at;
}
