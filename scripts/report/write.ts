/** Writes reports/<plan name>.json and .html. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Report } from './build.ts';
import { renderHtml } from './html.ts';
import { assertReport } from './schema.ts';

export function writeReports(dir: string, report: Report): { json: string; html: string } {
  assertReport(report);
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${report.plan.name}.json`);
  const html = join(dir, `${report.plan.name}.html`);
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(html, renderHtml(report));
  return { json, html };
}
