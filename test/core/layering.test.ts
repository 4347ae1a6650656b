// Imports point one way, down (docs: STYLE.md "Layout and layering", README "Architecture"):
// core/ imports nothing of the project outside core/; router/ imports core/ only; learner/ imports
// core/ and router/, never server/ (the two CLI entry points, which wire a concrete store and
// config in, excepted); server/ reaches learner/ only through its wiring files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The only learner/ files that may import server/: entry points, like server/main.ts. */
const LEARNER_ENTRY_POINTS = new Set(['learner/cli.ts', 'learner/eval-cli.ts']);
/** The only server/ files that may import learner/: main.ts and the wiring files. */
const SERVER_LEARNER_WIRING = new Set(['server/main.ts', 'server/router-wiring.ts', 'server/shadow-wiring.ts', 'server/admin/learner-job.ts']);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...sourceFiles(rel));
    else if (/\.(ts|mts|js|mjs)$/.test(e.name)) out.push(rel);
  }
  return out;
}

/** Every module specifier a file imports or re-exports: static, side-effect and dynamic imports. */
export function specifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]!);
  return out;
}

/** The project folder a relative specifier of `file` lands in (core, router, ...); null for a package. */
function targetFolder(file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const resolved = path.relative(root, path.resolve(root, path.dirname(file), spec));
  return resolved.split(path.sep)[0]!;
}

function violations(dir: string, allowed: (folder: string, file: string) => boolean): string[] {
  const bad: string[] = [];
  for (const file of sourceFiles(dir)) {
    for (const spec of specifiers(readFileSync(path.join(root, file), 'utf8'))) {
      const folder = targetFolder(file, spec);
      if (folder !== null && !allowed(folder, file)) bad.push(`${file} imports '${spec}' (${folder}/)`);
    }
  }
  return bad;
}

test('the import scanner sees every form of import', () => {
  const src = [
    "import { a,\n  b } from '../x/multi.ts';",
    "import type { T } from '../x/type.ts';",
    "export { c } from '../x/reexport.ts';",
    "export type * from '../x/star.ts';",
    "import '../x/side-effect.ts';",
    "const m = await import('../x/dynamic.ts');",
    "// import { gone } from '../x/commented.ts';",
    "import os from 'node:os';",
  ].join('\n');
  assert.deepEqual(specifiers(src).sort(), ['../x/dynamic.ts', '../x/multi.ts', '../x/reexport.ts', '../x/side-effect.ts', '../x/star.ts', '../x/type.ts', 'node:os'].sort());
  assert.equal(targetFolder('router/index.ts', '../server/errors.ts'), 'server');
  assert.equal(targetFolder('server/store/sqlite.ts', '../../core/log.ts'), 'core');
});

test('core/ imports nothing of the project outside core/', () => {
  assert.deepEqual(violations('core', (folder) => folder === 'core'), []);
});

test('router/ imports core/ and itself only', () => {
  assert.deepEqual(violations('router', (folder) => folder === 'core' || folder === 'router'), []);
});

test('learner/ imports core/, router/ and itself, never server/ (its CLI entry points excepted)', () => {
  assert.deepEqual(
    violations('learner', (folder, file) => folder === 'core' || folder === 'router' || folder === 'learner' || (folder === 'server' && LEARNER_ENTRY_POINTS.has(file))),
    [],
  );
});

test('server/ reaches learner/ only through main.ts and its wiring files, and never imports test/ or scripts/', () => {
  assert.deepEqual(
    violations('server', (folder, file) => folder === 'core' || folder === 'router' || folder === 'server' || (folder === 'learner' && SERVER_LEARNER_WIRING.has(file))),
    [],
  );
});
