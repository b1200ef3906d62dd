/**
 * The HTML report in a real browser: Debian's Chromium, headless, driven by playwright-core (no
 * browser is downloaded). Opened from a file:// path with every network request refused: no
 * console error, one row per VM with failures first, the filter and the sort work, a VM named
 * like an HTML tag shows as text and runs nothing. Saves screenshots of the example's report in
 * reports/screenshots/ (full page, and as printed to PDF).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../scripts/report/build.ts';
import { cli, planFile, ROOT, tempDir } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
// CI installs Chromium; elsewhere the suite says why it skips.
const available = existsSync(CHROMIUM) || process.env.CI === 'true';

describe.skipIf(!available)(`the HTML report in headless Chromium (${CHROMIUM})`, () => {
  // Made when the suite runs: a skipped file runs no hooks, so a folder made here would stay behind.
  let reports = '';
  const shots = join(ROOT, 'reports', 'screenshots');
  let browser: Browser;

  beforeAll(async () => {
    reports = tempDir('evac-browser-');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Open a report page, refusing every request that is not the file itself; collect errors and dialogs. */
  async function open(html: string) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    const dialogs: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url === `file://${html}`) return route.continue();
      requests.push(url);
      return route.abort();
    });
    await page.goto(`file://${html}`);
    return { page, errors, requests, dialogs };
  }

  const visibleNames = (page: Page) => page.$$eval('#vms tbody tr:not([hidden]) td:first-child', (tds) => tds.map((t) => t.textContent));

  it('the example: no console error, self-contained, one row per VM with failures first, filter and sort work', async () => {
    const r = await cli('run', 'plans/example.yaml', '--reports', reports);
    expect(r.code).toBe(3);
    const report = JSON.parse(readFileSync(join(reports, 'rack-a-firmware.json'), 'utf8')) as Report;
    const { page, errors, requests } = await open(join(reports, 'rack-a-firmware.html'));

    expect(await page.locator('#vms tbody tr').count()).toBe(report.vms.length);
    const statuses = await page.$$eval('#vms tbody tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent));
    expect(statuses.slice(0, 2)).toEqual(['left', 'unplaced']);
    expect(await page.locator('.verdict h2').textContent()).toBe('2 of 2 source hosts are NOT empty');
    expect(await page.locator('svg.timeline rect').count()).toBe(report.vms.reduce((n, v) => n + v.attempts.length, 0));

    await page.fill('#filter', 'analytics');
    expect(await visibleNames(page)).toEqual(['analytics-1']);
    await page.fill('#filter', 'hv-a2');
    const onA2 = report.vms.filter((v) => JSON.stringify([v.vm, v.status, v.source, v.host, v.method, v.reason]).toLowerCase().includes('hv-a2'));
    expect((await visibleNames(page)).sort()).toEqual(onA2.map((v) => v.vm).sort());
    await page.fill('#filter', '');
    expect(await visibleNames(page)).toHaveLength(report.vms.length);

    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'rack-a-firmware.png'), fullPage: true });

    // Sort by bytes sent, largest first (second click).
    const sent = page.locator('#vms thead th', { hasText: 'sent' });
    await sent.click();
    await sent.click();
    const first = (await visibleNames(page))[0];
    expect(first).toBe([...report.vms].sort((a, b) => b.bytes - a.bytes)[0].vm);

    await page.emulateMedia({ media: 'print' });
    expect(await page.locator('#filter').isVisible()).toBe(false);
    await page.pdf({ path: join(shots, 'rack-a-firmware.pdf'), format: 'A4', printBackground: true });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
  });

  it('a 253-character name wraps instead of widening the page; a host past its overcommitted limit shows its real ratio in red', async () => {
    const long = `vm-${'x'.repeat(250)}`;
    const host = `h-${'y'.repeat(251)}`;
    const file = planFile({
      version: 1, name: 'wide', sources: ['a'],
      fleet: { driver: 'sim', sim: { hosts: [{ name: 'a', vcpu: 8, memory_mib: 8192, disk_gib: 10 }, { name: 'b', vcpu: 8, memory_mib: 8192, disk_gib: 10 }, { name: host, vcpu: 2, memory_mib: 8192, disk_gib: 10 }], vms: [{ name: long, host: 'a', vcpu: 1, memory_mib: 512 }, { name: 'busy', host, vcpu: 16, memory_mib: 1024 }] } },
      placement: { overcommit: { vcpu: 4 } },
    });
    expect((await cli('run', file, '--reports', reports)).code).toBe(0);
    const { page, errors } = await open(join(reports, 'wide.html'));
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(1280);
    // busy asks 16 vCPUs of 2 x 4 = 8: 200% of the limit (the cap at 100% used to hide it), before and after.
    const over = await page.locator('.meter.over em').allTextContents();
    expect(over.length).toBeGreaterThanOrEqual(1);
    expect(over[0]).toMatch(/^2\d\d% over the limit$/);
    expect(errors).toEqual([]);
  });

  it('a VM named <img src=x onerror=alert(1)> shows as text and runs nothing', async () => {
    const name = '<img src=x onerror=alert(1)>';
    const file = planFile({
      version: 1, name: 'xss', sources: ['a'],
      fleet: { driver: 'sim', sim: { hosts: [{ name: 'a', vcpu: 8, memory_mib: 8192, disk_gib: 10 }, { name: 'b', vcpu: 8, memory_mib: 8192, disk_gib: 10 }], vms: [{ name, host: 'a', vcpu: 1, memory_mib: 512 }, { name: 'plain', host: 'a', vcpu: 1, memory_mib: 512 }] } },
    });
    expect((await cli('run', file, '--reports', reports)).code).toBe(0);
    const { page, errors, requests, dialogs } = await open(join(reports, 'xss.html'));
    expect(await visibleNames(page)).toEqual([name, 'plain']);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('svg.timeline title', { hasText: name }).count()).toBe(1);
    await page.fill('#filter', 'onerror');
    expect(await visibleNames(page)).toEqual([name]);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
  });

  it('a region-size report pages its tables: 100 rows laid out at a time, filter and sort over every row, print shows all', async () => {
    const sources = Array.from({ length: 30 }, (_, i) => `hv-${String(i + 1).padStart(3, '0')}`);
    const file = planFile({
      version: 1, name: 'paged', sources: sources as [string, ...string[]],
      fleet: { driver: 'sim', sim: { seed: 5, generate: { hosts: 300, vms: 3000 } } },
      migration: { concurrency: { total: 32, per_source: 2, per_destination: 2 } },
    });
    expect([0, 3]).toContain((await cli('run', file, '--reports', reports)).code);
    const report = JSON.parse(readFileSync(join(reports, 'paged.json'), 'utf8')) as Report;
    expect(report.vms.length).toBeGreaterThan(250);
    const { page, errors, requests } = await open(join(reports, 'paged.html'));
    expect(await page.locator('#vms tbody tr').count()).toBe(report.vms.length);
    expect(await visibleNames(page)).toHaveLength(100);
    const nav = page.locator('nav.pager[data-for="vms"]');
    expect(await nav.locator('span').textContent()).toBe(`rows 1–100 of ${report.vms.length}`);
    const firstPage = await visibleNames(page);
    await nav.locator('button', { hasText: 'next' }).click();
    const second = await visibleNames(page);
    expect(second).toHaveLength(100);
    expect(second.filter((n) => firstPage.includes(n))).toEqual([]);
    expect(await nav.locator('span').textContent()).toBe(`rows 101–200 of ${report.vms.length}`);
    // A VM from the last page is found by the filter, whatever page was shown.
    const last = (await page.$$eval('#vms tbody tr td:first-child', (tds) => tds.map((t) => t.textContent))).at(-1)!;
    await page.fill('#filter', last);
    expect(await visibleNames(page)).toEqual([last]);
    await page.fill('#filter', '');
    // Sorting orders every row, not the page: the first row is the largest of all.
    const sent = page.locator('#vms thead th', { hasText: 'sent' });
    await sent.click();
    await sent.click();
    expect((await visibleNames(page))[0]).toBe([...report.vms].sort((a, b) => b.bytes - a.bytes)[0].vm);
    // The hosts table pages too (300 hosts in scope), and printing shows every row of both.
    expect(await page.locator('#hosts tbody tr:not([hidden])').count()).toBe(100);
    await page.emulateMedia({ media: 'print' });
    expect(await page.locator('nav.pager').first().isVisible()).toBe(false);
    expect(await page.locator('#vms tbody tr:visible').count()).toBe(report.vms.length);
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
  });
});
