import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileFromFile } from 'json-schema-to-typescript';
import { createGenerator } from 'ts-json-schema-generator';
import { expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

it('the plan types are generated from the current schema (run npm run gen:types)', async () => {
  const banner = "/* Generated from schemas/plan.schema.json by 'npm run gen:types'. Do not edit: edit the schema. */";
  const fresh = await compileFromFile(join(ROOT, 'schemas/plan.schema.json'), { bannerComment: banner, unreachableDefinitions: true });
  expect(readFileSync(join(ROOT, 'scripts/plan/plan-types.ts'), 'utf8')).toBe(fresh);
});

it('the report schema is generated from the current Report type (run npm run gen:types)', () => {
  const fresh = createGenerator({ path: join(ROOT, 'scripts/report/build.ts'), type: 'Report', tsconfig: join(ROOT, 'tsconfig.json'), topRef: false }).createSchema('Report');
  expect(JSON.parse(readFileSync(join(ROOT, 'schemas/report.schema.json'), 'utf8'))).toEqual(fresh);
});
