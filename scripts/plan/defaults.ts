/**
 * Plan defaults come from schemas/plan.schema.json and nowhere else: its `default` keywords are
 * filled in by ajv (useDefaults), and the few rules that merge a given map over a default map
 * read that default here. Code reads the filled values and repeats no default's value
 * (test/defaults.test.ts checks both ways).
 */
import type { ValidateFunction } from 'ajv';
import type { EvacuationPlan } from './plan-types.ts';
import { PLAN_SCHEMA, planAjv, validatePlanSchema } from './schema.ts';

/** Definitions a driver or the simulator fills on its own section of the plan. */
export type Definition = 'SimFleet' | 'SimHost' | 'SimVm' | 'LibvirtFleet' | 'OpenStackFleet' | 'Rolling';

const ajv = planAjv;
const schema = PLAN_SCHEMA as { $id: string };
const fillPlan = validatePlanSchema;
const fillers = new Map<Definition, ValidateFunction>();

/** A copy of the plan with every default the schema gives filled in (validity is loadPlan's business: this only fills). */
export function withDefaults(plan: EvacuationPlan): EvacuationPlan;
/** A copy of one section of the plan (a definition of the schema) with its defaults filled in. */
export function withDefaults<T extends object>(section: T, definition: Definition): T;
export function withDefaults<T extends object>(value: T, definition?: Definition): T {
  const copy = structuredClone(value);
  (definition === undefined ? fillPlan : fillerOf(definition))(copy);
  return copy;
}

function fillerOf(definition: Definition): ValidateFunction {
  let fill = fillers.get(definition);
  if (!fill) {
    fill = ajv.getSchema(`${schema.$id}#/definitions/${definition}`);
    if (!fill) throw new Error(`plan schema has no definition ${definition}`);
    fillers.set(definition, fill);
  }
  return fill;
}

/** The schema's `default` at a JSON pointer into the schema (a copy), for rules that merge over it; throws if there is none. */
export function schemaDefault<T>(pointer: string): T {
  let node: unknown = PLAN_SCHEMA;
  for (const key of pointer.split('/').slice(1)) node = (node as Record<string, unknown> | undefined)?.[key.replace(/~1/g, '/').replace(/~0/g, '~')];
  if (typeof node !== 'object' || node === null || !('default' in node)) throw new Error(`plan schema has no default at ${pointer}`);
  return structuredClone((node as { default: T }).default);
}
