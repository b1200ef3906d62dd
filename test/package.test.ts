/**
 * The compiled package (npm test builds dist/ first): `--version`, a build and a tarball that
 * hold only the product, and a start that loads only what the command uses.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { cli, ROOT, tempDir } from './helpers.ts';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

/** Every file under dir, relative to it. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** The files and packages a command of the compiled CLI loads, through a module hook that logs each load. */
async function loaded(...args: string[]): Promise<string[]> {
  const dir = tempDir('evac-load-');
  writeFileSync(join(dir, 'hooks.mjs'), "export async function load(url, context, next) { process._rawDebug('LOAD ' + url); return next(url, context); }\n");
  writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
  const r = await $({ cwd: ROOT, nothrow: true, quiet: true })`node --import ${join(dir, 'register.mjs')} dist/evacuator.js ${args}`;
  expect(r.exitCode).toBe(0);
  return r.stderr.split('\n').filter((l) => l.startsWith('LOAD ')).map((l) => l.slice(5).replace(pathToFileURL(ROOT).href, ''));
}

describe('the package', () => {
  it('--version prints the version in package.json', async () => {
    const r = await cli('--version');
    expect(r).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  it('the bin is the compiled entry, with its #! line', () => {
    expect(pkg.bin.evacuator).toBe('dist/evacuator.js');
    expect(readFileSync(join(ROOT, pkg.bin.evacuator), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('the build holds the product only: one .js per source outside bench, nothing of the test fleets', () => {
    // Besides the modules, only the compiler's record of the incremental build (not packed: see the tarball test).
    const built = files(join(ROOT, 'dist')).filter((f) => f !== '.tsbuildinfo');
    const sources = files(join(ROOT, 'scripts')).filter((f) => f.endsWith('.ts') && !/^bench\//.test(f));
    expect(built.sort()).toEqual(sources.map((f) => f.replace(/\.ts$/, '.js')).sort());
    for (const f of built) expect(readFileSync(join(ROOT, 'dist', f), 'utf8'), f).not.toMatch(/\/(testbed|cloud|bench)\/|\.ts['"]/);
  });

  it('the tarball holds dist/, schemas/, plans/, README.md and package.json, nothing else', async () => {
    const r = await $({ cwd: ROOT, quiet: true })`npm pack --dry-run --json --ignore-scripts`;
    const packed = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
    expect(packed.filter((p) => !/^(dist|schemas|plans)\//.test(p)).sort()).toEqual(['README.md', 'package.json']);
    expect(packed).toContain('dist/evacuator.js');
    expect(packed).not.toContain('dist/.tsbuildinfo');
    expect(packed).toContain('schemas/plan.schema.json');
    expect(packed).toContain('plans/example.yaml');
  });

  it('--help and validate load no command they do not run: no driver, runner, placement, report, ssh2 or zx', async () => {
    const heavy = /dist\/(cli\/commands|fleet\/(sim\/driver|libvirt|openstack)|runner|placement|preflight|report)|node_modules\/(ssh2|zx)\//;
    const help = await loaded('--help');
    expect(help).toContain('dist/evacuator.js');
    expect(help.filter((u) => u.includes('dist/')).sort()).toEqual(['dist/cli/shown.js', 'dist/errors.js', 'dist/evacuator.js', 'dist/process.js']);
    const validate = await loaded('validate', 'plans/example.yaml');
    expect(validate).toContain('dist/plan/load.js');
    expect(validate.filter((u) => heavy.test(u))).toEqual([]);
  });
});
