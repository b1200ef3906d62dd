/** The plan's JSON Schema, enforced with ajv; errors turned into one readable line each. */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import type { FieldPath } from './positions.ts';

export const PLAN_SCHEMA_FILE = new URL('../../schemas/plan.schema.json', import.meta.url);

// One ajv, one compile of the plan schema (the largest part of `validate`'s start-up): it checks
// plans (on a copy, so a plan is reported on as written) and fills defaults (plan/defaults.ts).
export const planAjv = new Ajv({ allErrors: true, strict: true, verbose: true, strictTuples: false, useDefaults: true });
/** The plan schema as parsed; read-only (plan/defaults.ts compiles its own copy). */
export const PLAN_SCHEMA: Readonly<Record<string, unknown>> = JSON.parse(readFileSync(PLAN_SCHEMA_FILE, 'utf8'));
export const validatePlanSchema = planAjv.compile(PLAN_SCHEMA);

export interface SchemaProblem {
  path: FieldPath;
  /** Point at this key inside the map at path (unknown keys). */
  key?: string;
  message: string;
}

/** Every schema violation of the plan, in document order of their paths. */
export function checkSchema(data: unknown): SchemaProblem[] {
  if (validatePlanSchema(structuredClone(data))) return [];
  const seen = new Set<string>();
  const problems: SchemaProblem[] = [];
  for (const e of validatePlanSchema.errors ?? []) {
    const p = describe(e);
    const id = `${p.path.join('/')}|${p.key ?? ''}|${p.message}`;
    if (!seen.has(id)) {
      seen.add(id);
      problems.push(p);
    }
  }
  return problems;
}

function describe(e: ErrorObject): SchemaProblem {
  const path: FieldPath = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  const got = (v: unknown) => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v));
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty);
      const allowed = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
      return { path: [...path, key], key, message: `unknown key '${key}'; allowed here: ${allowed.join(', ')}` };
    }
    case 'required': {
      const key = String(e.params.missingProperty);
      return { path, message: `missing required key '${key}'` };
    }
    case 'enum':
      return { path, message: `must be one of ${(e.params.allowedValues as unknown[]).map(got).join(', ')} (got ${got(e.data)})` };
    case 'type':
      return { path, message: `must be ${e.params.type} (got ${Array.isArray(e.data) ? 'a list' : e.data === null ? 'nothing' : `${typeof e.data} ${got(e.data)}`})` };
    case 'pattern': {
      const what = (e.parentSchema as { description?: string }).description;
      return { path, message: `${got(e.data)} does not match ${e.params.pattern}${what ? ` (${what})` : ''}` };
    }
    case 'propertyNames':
      return { path, message: `key ${got(e.params.propertyName)} is not a valid resource name (lower case, digits, _)` };
    default:
      return { path, message: `${e.message ?? 'is invalid'} (got ${got(e.data)})` };
  }
}
